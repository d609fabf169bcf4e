#!/bin/sh
# examples.sh: take the example blocks out of README.md and the man pages,
# exactly as a reader sees them, for tests/examples.bats.
#
#   examples.sh list FILE...        one line per block: FILE LINE KIND [WORD...]
#   examples.sh extract FILE LINE   the text of the block listed at LINE
#   examples.sh unmarked FILE...    FILE:LINE of every block with no marker
#
# The blocks: in Markdown every code block, fenced (``` or ~~~) or indented
# (four spaces or a tab, which are removed); in a man page every .Bd -literal
# ... .Ed block of its EXAMPLES section, and any other one that is marked.
# A marker is the line just before a block (blank lines may come between):
#
#   README.md (Markdown)  <!-- example: KIND [WORD...] -->
#   man pages (mdoc)      .\" example: KIND [WORD...]
#
# An unmarked block is listed with KIND "-": tests/examples.bats decides how
# it runs (its LISTED table, else the block's look). KIND says how the block
# runs or, when it cannot run as it stands, what is checked instead;
# tests/examples.bats has the list. The WORDs are attributes: "service",
# "part", "fragment VAR...", "id=NAME", and what the reader has ("dir=PATH").
#
# A man page's literal block is un-escaped as roff prints it: \e and \\ give
# a backslash, \& and font changes (\fB \fI \fR \fP) nothing, \- a minus,
# \(aq \(dq \(ha \(ti \(ga \(rs the ASCII characters they name. Any other
# escape, and any request or macro line inside the block (other than a
# comment), is an error: the block would not read as it runs.
set -u
cmd=${1:-}
[ $# -ge 1 ] && shift

awkprog='
function fail(msg) { printf "examples.sh: %s:%d: %s\n", FILENAME, FNR, msg > "/dev/stderr"; bad = 1 }
function unescape(s,    out, c, n, name) {
	out = ""
	while ((n = index(s, "\\")) > 0) {
		out = out substr(s, 1, n - 1)
		c = substr(s, n + 1, 1)
		s = substr(s, n + 2)
		if (c == "e" || c == "\\") out = out "\\"
		else if (c == "&") ;
		else if (c == "-") out = out "-"
		else if (c == "f") s = substr(s, 2)
		else if (c == "(") {
			name = substr(s, 1, 2); s = substr(s, 3)
			if (name == "aq") out = out "\047"
			else if (name == "dq") out = out "\""
			else if (name == "ha") out = out "^"
			else if (name == "ti") out = out "~"
			else if (name == "ga") out = out "`"
			else if (name == "rs") out = out "\\"
			else fail("unsupported escape \\(" name " in an example")
		} else fail("unsupported escape \\" c " in an example")
	}
	return out s
}
# Emit one block: list mode prints its header, extract mode its text.
function begin_block() { inblock = 1; nlines = 0; start = mline; bfile = FILENAME; bmd = md }
function end_block(   i) {
	inblock = 0
	if (mode == "list") printf "%s %d %s\n", bfile, start, mwords
	else if (mode == "extract" && start == want) {
		while (nlines > 0 && text[nlines] == "") nlines--
		for (i = 1; i <= nlines; i++) print text[i]
		found = 1
	}
	marked = 0
}
# An indented Markdown block may end with its file.
FNR == 1 && inblock && bmd && fence == "" { end_block() }
FNR == 1 {
	md = FILENAME ~ /\.md$/
	marked = 0; inblock = 0; fence = ""; inexamples = 0; prevblank = 1
}
# ---- Markdown ----
md && !inblock && /^<!-- example: .* -->$/ {
	mwords = $0; sub(/^<!-- example: /, "", mwords); sub(/ -->$/, "", mwords)
	marked = 1; mline = FNR; prevblank = 1; next
}
md && inblock && fence != "" {
	if (substr($0, 1, 3) == fence) { end_block(); fence = ""; prevblank = 0; next }
	text[++nlines] = $0; next
}
md && inblock {
	if ($0 ~ /^(    |\t)/) { line = $0; sub(/^(    |\t)/, "", line); text[++nlines] = line; next }
	if ($0 ~ /^[ \t]*$/) { text[++nlines] = ""; next }
	end_block()
}
md {
	blank = $0 ~ /^[ \t]*$/
	isfence = $0 ~ /^(```|~~~)/
	isindent = prevblank && $0 ~ /^(    |\t)/ && !blank
	if (marked && blank) next
	if (marked) {
		if (isfence) { fence = substr($0, 1, 3); begin_block(); next }
		if (isindent) { begin_block(); line = $0; sub(/^(    |\t)/, "", line); text[++nlines] = line; next }
		fail("an example marker is not followed by a code block"); marked = 0
	}
	# An unmarked block is a block all the same, of kind "-".
	if (isfence || isindent) {
		if (mode == "unmarked") printf "%s:%d\n", FILENAME, FNR
		mwords = "-"; mline = FNR
		if (isfence) { fence = substr($0, 1, 3); begin_block(); next }
		begin_block(); line = $0; sub(/^(    |\t)/, "", line); text[++nlines] = line; next
	}
	prevblank = blank
	next
}
# ---- mdoc ----
/^\.Sh / { inexamples = ($0 == ".Sh EXAMPLES") }
!inblock && /^\.\\" example: / {
	mwords = $0; sub(/^\.\\" example: /, "", mwords)
	marked = 1; mline = FNR; next
}
inblock && /^\.Ed/ { end_block(); next }
inblock && /^\.\\"/ { next }
inblock && /^[.\047]/ { fail("a request or macro inside an example: " $0); next }
inblock { text[++nlines] = unescape($0); next }
/^\.Bd -literal/ {
	if (marked) { begin_block(); next }
	if (!inexamples) next
	if (mode == "unmarked") printf "%s:%d\n", FILENAME, FNR
	mwords = "-"; mline = FNR; begin_block(); next
}
marked && /^\.\\"/ { next }
marked { fail("an example marker is not followed by .Bd -literal"); marked = 0 }
END {
	if (inblock && bmd && fence == "") end_block()
	if (inblock) fail("an example block does not end")
	if (mode == "extract" && !found) { printf "examples.sh: no example marked at line %s\n", want > "/dev/stderr"; bad = 1 }
	exit bad
}
'

case $cmd in
list | unmarked)
	[ $# -ge 1 ] || { echo "usage: examples.sh $cmd FILE..." >&2; exit 2; }
	awk -v mode="$cmd" "$awkprog" "$@"
	;;
extract)
	[ $# -eq 2 ] || { echo "usage: examples.sh extract FILE LINE" >&2; exit 2; }
	awk -v mode=extract -v want="$2" "$awkprog" "$1"
	;;
*)
	echo "usage: examples.sh list|unmarked FILE... | extract FILE LINE" >&2
	exit 2
	;;
esac
