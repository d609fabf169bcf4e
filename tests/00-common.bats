#!/usr/bin/env bats
# The contract every program shares: help, version, usage errors, and a man page
# that mandoc passes and whose SYNOPSIS is what --help says.
load helpers

setup() { common_setup; }
teardown() { common_teardown; }

PROGS="socket bind-input bind-output pool master"

# Every test below goes through all five: one not built fails them, rather
# than leaving them nothing to check.
@test "every program is built: all five are executable files in \$SP_BIN" {
	for p in $PROGS; do
		[ -f "$SP_BIN/$p" ] && [ -x "$SP_BIN/$p" ] || { echo "not built: $SP_BIN/$p"; false; }
	done
}

@test "every program prints usage on -h, -help and --help, exit 0" {
	for p in $PROGS; do
		for h in -h -help --help; do
			run --separate-stderr "$SP_BIN/$p" "$h"
			[ "$status" -eq 0 ]
			[[ "${lines[0]}" == "usage: $p "* ]]
			[ -z "$stderr" ]
		done
	done
}

@test "every program prints NAME VERSION on -V, -version and --version" {
	for p in $PROGS; do
		for v in -V -version --version; do
			run --separate-stderr "$SP_BIN/$p" "$v"
			[ "$status" -eq 0 ]
			[[ "$output" =~ ^$p\ [0-9]+\.[0-9]+\.[0-9]+$ ]]
		done
	done
}

@test "every program rejects an unknown option with exit 2 and a usage hint" {
	for p in $PROGS; do
		run --separate-stderr "$SP_BIN/$p" -Z
		[ "$status" -eq 2 ]
		[ -z "$output" ]
		[ "${stderr_lines[0]}" = "$p: unknown option -Z" ]
		[[ "$stderr" == *"usage: $p"* ]]
	done
}

@test "every man page renders without warnings" {
	for m in "$BATS_TEST_DIRNAME"/../man/*.[17]; do
		run --separate-stderr env MANWIDTH=80 man --warnings -l "$m"
		[ "$status" -eq 0 ]
		[ -z "$stderr" ]
	done
}

# mandoc(1)'s checker at its warning level. Its style level is left out: what
# it adds depends on the machine (an Xr to a page that is not installed).
@test "every man page is clean under mandoc -T lint -W warning" {
	local bad=0
	for m in "$BATS_TEST_DIRNAME"/../man/*.[17]; do
		run --separate-stderr mandoc -T lint -W warning "$m"
		if [ -n "$output$stderr" ] || [ "$status" -ne 0 ]; then
			echo "${m##*/}: exit $status"
			printf '%s\n' "$output" "$stderr" | grep . || true
			bad=1
		fi
	done
	[ "$bad" -eq 0 ]
}

# help_options PROG: the options of each form in the usage lines of PROG
# --help, a line a form ("2: -B -C -b ..."), sorted: each letter of a cluster
# (-bcfqrvw) alone, -version and -help whole.
help_options() {
	"$SP_BIN/$1" --help | awk -v p="$1" '
		/^$/ { exit } # the usage lines end at the first empty line
		{ sub(/^usage:/, "") }
		{
			# A form begins with the name, its continuation lines do not.
			if ($1 == p) n++
			for (i = $1 == p ? 2 : 1; i <= NF; i++) {
				w = $i
				sub(/^\[+/, "", w)
				sub(/\]+$/, "", w)
				if (w !~ /^-[A-Za-z0-9]+$/) continue
				if (w == "-version" || w == "-help") { print n, w; continue }
				for (j = 2; j <= length(w); j++) print n, "-" substr(w, j, 1)
			}
		}' | by_form
}

# man_options PAGE: the same from the SYNOPSIS of an mdoc page's source, where
# each form begins with Nm: the arguments of each Fl macro up to the next
# macro (.Op Fl c Ar max, .Fl W, .Fl version | Fl help).
man_options() {
	awk '
		/^\.Sh / { on = ($0 == ".Sh SYNOPSIS"); next }
		!on || !/^\./ { next }
		{
			fl = 0
			sub(/^\./, "")
			for (i = 1; i <= NF; i++) {
				w = $i
				if (w == "Nm" && i == 1) n++
				if (w ~ /^(Ar|Bk|Cm|Ek|Em|Ev|Fl|Ic|Li|Nm|No|Ns|Oc|Oo|Op|Pa|Sy|Va|Xc|Xo)$/) {
					fl = w == "Fl"
					continue
				}
				if (!fl || w !~ /^[A-Za-z0-9]+$/) continue # an argument, or | and the like
				if (w == "version" || w == "help") { print n, "-" w; continue }
				for (j = 1; j <= length(w); j++) print n, "-" substr(w, j, 1)
			}
		}' "$1" | by_form
}

# by_form: "FORM OPTION" lines to one line a form, its options sorted.
by_form() {
	LC_ALL=C sort -u -k1,1n -k2,2 |
		awk '{ o[$1] = o[$1] " " $2; if ($1 > n) n = $1 } END { for (i = 1; i <= n; i++) print i ":" o[i] }'
}

@test "every program's --help and its man page's SYNOPSIS name the same options" {
	local bad=0
	for p in $PROGS; do
		help_options "$p" >help.opts
		man_options "$BATS_TEST_DIRNAME/../man/$p.1" >man.opts
		# Neither reading came back empty: both found the words every program has.
		grep -q -- ' -version' help.opts
		grep -q -- ' -version' man.opts
		diff -u --label "$p --help" --label "man/$p.1 SYNOPSIS" help.opts man.opts || bad=1
	done
	[ "$bad" -eq 0 ]
}

# help_synopsis PROG: the usage lines of PROG --help, one form a line, with
# single blanks and none around '|', and what is not an option in lower case:
# --help writes KEY where the man page sets key in italics.
help_synopsis() {
	"$SP_BIN/$1" --help | awk -v p="$1" '
		/^$/ { exit }
		{ sub(/^usage:/, "") }
		$1 == p && form != "" { print form; form = "" }
		{
			for (i = 1; i <= NF; i++)
				form = form (form == "" ? "" : " ") ($i ~ /^\[*-/ ? $i : tolower($i))
		}
		END { print form }' | sed 's/ *| */|/g'
}

# man_synopsis PAGE: the SYNOPSIS of PAGE as mandoc renders it (without its
# overstrikes for bold and underline), the same way.
man_synopsis() {
	mandoc -T ascii -O width=1000 "$1" | sed 's/.\x08//g' |
		awk '/^SYNOPSIS$/ { on = 1; next } /^[A-Z]/ { on = 0 } on && NF { $1 = $1; print }' |
		sed 's/ *| */|/g'
}

@test "every program's --help usage lines are its man page's SYNOPSIS, word for word" {
	local bad=0
	for p in $PROGS; do
		help_synopsis "$p" >help.syn
		man_synopsis "$BATS_TEST_DIRNAME/../man/$p.1" >man.syn
		grep -q "^$p -version|-help\$" help.syn
		grep -q "^$p -version|-help\$" man.syn
		diff -u --label "$p --help" --label "man/$p.1 SYNOPSIS" help.syn man.syn || bad=1
	done
	[ "$bad" -eq 0 ]
}
