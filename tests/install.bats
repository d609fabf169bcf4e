#!/usr/bin/env bats
# make install / uninstall with PREFIX and DESTDIR.
load helpers

setup() { common_setup; ROOT=$(cd "$BATS_TEST_DIRNAME/.." && pwd); }
teardown() { common_teardown; }

@test "make install puts programs and man pages under DESTDIR/PREFIX; uninstall removes them" {
	dest=$PWD/dest
	run make -s -C "$ROOT" install PREFIX=/opt/sp DESTDIR="$dest"
	[ "$status" -eq 0 ]
	for p in "$ROOT"/src/*.c; do
		p=${p##*/}
		p=${p%.c}
		[ -x "$dest/opt/sp/bin/$p" ]
		[ -f "$dest/opt/sp/share/man/man1/$p.1" ]
	done
	"$dest/opt/sp/bin/socket" --version
	run make -s -C "$ROOT" uninstall PREFIX=/opt/sp DESTDIR="$dest"
	[ "$status" -eq 0 ]
	[ -z "$(find "$dest" -type f)" ]
}
