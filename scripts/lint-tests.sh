#!/bin/sh
# lint-tests.sh FILE...: fail on assertions that cannot fail. In bats a test
# body runs under `set -e`, which ignores a command negated with `!`: such
# a line fails the test only when it is the test's last command. Write
# `run ! cmd` or `! cmd || false` instead. Prints FILE:LINE for each one.
status=0
for f in "$@"; do
	awk -v file="$f" '
	/^@test / { intest = 1; n = 0; next }
	intest && /^}/ {
		for (i = 1; i < n; i++)
			if (text[i] ~ /^[ \t]*![ \t]/ && text[i] !~ /\|\|[ \t]*(false|return 1|exit 1)[ \t]*$/) {
				printf "%s:%d: a negated command that is not the last line never fails the test: %s\n", file, line[i], text[i]
				bad = 1
			}
		intest = 0
		next
	}
	intest && $0 !~ /^[ \t]*(#.*)?$/ { n++; text[n] = $0; line[n] = NR }
	END { exit bad }
	' "$f" || status=1
done
exit $status
