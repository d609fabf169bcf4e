#!/bin/sh
# lint-tests.sh FILE...: fail on assertions that cannot fail. In bats a test
# body runs under `set -e`, which ignores
#  - a command negated with `!`, and
#  - every command of an && list but the last (`[ a ] && [ b ]` never fails
#    for a; `cmd && [ x ]` never fails for cmd),
# so such a line fails the test only when it is the test's last command.
# Write `run ! cmd` or `! cmd || false`, and one test a line (or end the
# list with `|| false`). The bodies of tests and of functions (helpers that
# assert, run under the same `set -e`) are read; prints FILE:LINE for each
# such line.
#
# The lines are read as the shell reads them: a command continued over lines
# (a trailing &&, ||, | or \, or an open quote or parenthesis) is one, and
# what stands in quotes, $( ), ( ), ${ }, [[ ]], comments and here-documents
# is not looked into. An && list is one of tests when one of its commands is
# [ ], [[ ]], test or a negation. Left alone: the body's last command;
# conditions (if, elif, while, until); lists with || (their failure is
# handled: `|| false`, `|| continue`); lists whose last command is continue,
# break, return or exit (`[ -z "$x" ] && continue` is control flow, not an
# assertion: write other conditional commands with if); lists run in the
# background with &. A line in a loop's body is not the body's last command:
# it is checked.
status=0
for f in "$@"; do
	awk -v file="$f" '
	function push(kind) {
		st[++nstack] = kind
		if (nstack == 1) skel = skel "_"
	}
	# scan(S): add the line S to the command being read; its text outside
	# quotes and parentheses goes to skel, what is inside them becomes "_".
	function scan(s,    len, i, c, c2, top, ws, rest, word) {
		if (lstart == 0) lstart = NR
		ltext = ltext (ltext == "" ? "" : "\n") s
		cont = 0
		len = length(s)
		for (i = 1; i <= len; i++) {
			c = substr(s, i, 1)
			c2 = substr(s, i, 2)
			top = nstack ? st[nstack] : ""
			if (top == "sq") {
				if (c == "\047") nstack--
				continue
			}
			if (c == "\\") {
				if (i == len) cont = 1
				else if (top == "") skel = skel "_"
				i++
				continue
			}
			if (top == "dq") {
				if (c == "\"") nstack--
				else if (c2 == "$(") { st[++nstack] = "paren"; i++ }
				else if (c2 == "${") { st[++nstack] = "brace"; i++ }
				continue
			}
			if (top == "brace" && c == "}") { nstack--; continue }
			ws = i == 1 || substr(s, i - 1, 1) ~ /[ \t;&|()]/
			if (c == "#" && ws) break
			if (c == "\047") { push("sq"); continue }
			if (c == "\"") { push("dq"); continue }
			if (c2 == "$(" || c2 == "${") { push(c2 == "$(" ? "paren" : "brace"); i++; continue }
			if (c == "(") { push("paren"); continue }
			if (c == ")" && top == "paren") { nstack--; continue }
			if (top == "" && ws && c2 == "[[" && (i + 2 > len || substr(s, i + 2, 1) ~ /[ \t]/)) {
				push("dbrack")
				skel = substr(skel, 1, length(skel) - 1) "[[ _"
				i++
				continue
			}
			if (top == "dbrack" && ws && c2 == "]]" && (i + 2 > len || substr(s, i + 2, 1) ~ /[ \t;&|)]/)) {
				nstack--
				skel = skel " ]]"
				i++
				continue
			}
			if (top != "") continue
			if (substr(s, i, 3) == "<<<") { skel = skel "<<<"; i += 2; continue }
			if (c2 == "<<") {
				rest = substr(s, i + 2)
				hdtabs = rest ~ /^-/
				sub(/^-?[ \t]*/, "", rest)
				word = rest
				sub(/[ \t;&|<>)].*$/, "", word)
				gsub(/[\047"\\]/, "", word)
				hdnext = word
				skel = skel "<<"
				i++
				continue
			}
			skel = skel c
		}
		if (hdnext != "") { heredoc = hdnext; hdnext = "" }
		if (nstack > 0 || cont || skel ~ /(&&|\|\||\|)[ \t]*$/) {
			skel = skel " "
			return
		}
		if (skel !~ /^[ \t]*$/) {
			n++
			cmd[n] = skel
			text[n] = ltext
			line[n] = lstart
		}
		skel = ""
		ltext = ""
		lstart = 0
	}
	function trim(s) {
		sub(/^[ \t]+/, "", s)
		sub(/[ \t]+$/, "", s)
		return s
	}
	function firstword(s) {
		s = trim(s)
		sub(/[ \t].*$/, "", s)
		return s
	}
	function report(i, what) {
		t = text[i]
		sub(/^[ \t]+/, "", t)
		gsub(/\n[ \t]*/, " ", t)
		printf "%s:%d: %s that is not the last command of its test or function never fails it: %s\n", file, line[i], what, t
		bad = 1
	}
	# check(I): the I-th command of the test, which is not its last.
	function check(i,    s, nl, k, c, list, bg, els, ne, j, testy, last) {
		s = cmd[i]
		gsub(/;;/, ";", s)
		gsub(/[0-9]*>&[0-9-]*/, "R", s) # 2>&1, >&-
		gsub(/<&[0-9-]*/, "R", s)
		gsub(/&>>?/, "R", s)
		gsub(/\|&/, "|", s)
		gsub(/&&/, "\001", s)
		gsub(/\|\|/, "\002", s)
		# lists end at ; & and at a ) of a case pattern
		nl = 0
		list = ""
		for (k = 1; k <= length(s); k++) {
			c = substr(s, k, 1)
			if (c == ";" || c == ")" || c == "&") {
				lists[++nl] = list
				bgs[nl] = c == "&"
				list = ""
			} else
				list = list c
		}
		lists[++nl] = list
		bgs[nl] = 0
		for (k = 1; k <= nl; k++) {
			list = lists[k]
			while (sub(/^[ \t]*(then|do|else|\{|\}|fi|done|esac)([ \t]+|$)/, "", list))
				;
			list = trim(list)
			if (list == "" || bgs[k]) continue
			if (firstword(list) ~ /^(if|elif|while|until|for|case|select)$/) continue
			if (index(list, "\001")) {
				if (index(list, "\002")) continue
				ne = split(list, els, "\001")
				last = firstword(els[ne])
				if (last ~ /^(continue|break|return|exit)$/) continue
				testy = 0
				for (j = 1; j <= ne; j++)
					if (trim(els[j]) ~ /^(!|\[|\[\[|test)([ \t]|$)/) testy = 1
				if (testy) report(i, "a list of tests joined by &&")
			} else if (list ~ /^![ \t]/ && list !~ /\002[ \t]*(false|return 1|exit 1)$/)
				report(i, "a negated command")
		}
	}
	# a test, or a function, at the start of a line begins a body; a test on
	# one line is its own last command
	/^@test / || /^(function[ \t]+)?[A-Za-z_][A-Za-z0-9_]*[ \t]*\(\)[ \t]*\{[ \t]*(#.*)?$/ {
		intest = $0 !~ /\}[ \t]*$/
		n = 0; nstack = 0; heredoc = ""; skel = ""; ltext = ""; lstart = 0
		next
	}
	!intest { next }
	heredoc != "" {
		t = $0
		if (hdtabs) sub(/^\t+/, "", t)
		if (t == heredoc) heredoc = ""
		next
	}
	/^}/ && nstack == 0 && skel == "" {
		for (i = 1; i < n; i++) check(i)
		intest = 0
		next
	}
	{ scan($0) }
	END { exit bad }
	' "$f" || status=1
done
exit $status
