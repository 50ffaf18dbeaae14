#!/usr/bin/env bash
# Is a usable Debian backports source configured? Sourced by setup.sh; tested by
# test/setup-apt.test.ts against sample source files.
#
# A text search for "bookworm-backports" is wrong: a commented-out line, a deb-src-only line, a
# deb822 stanza with `Types: deb-src` or `Enabled: no` all contain the word but give apt no
# binary packages, and `apt-get install -t bookworm-backports` then fails with exit 100. So ask
# apt itself:
#  - before `apt-get update`: `apt-get indextargets --no-release-info` lists the index files apt
#    would fetch, parsed from sources.list, *.list and deb822 *.sources exactly as apt parses them
#    (comments, deb-src, Enabled: no, Types:, multiple suites). No network, no root;
#  - after `apt-get update`: `apt-cache policy` shows a release line (n=SUITE) only for a binary
#    package index that was actually fetched.
# Extra arguments are passed to apt (tests point Dir::Etc::SourceList/SourceParts at samples).

# Status 0 when some `deb` (binary) entry of suite $1 is configured and enabled.
apt_has_binary_suite() {
  local suite=$1 targets
  shift
  targets=$(apt-get indextargets "$@" --no-release-info --format '$(TARGET_OF) $(RELEASE)' 'Identifier: Packages' 2>/dev/null) || return 2
  printf '%s\n' "$targets" | grep -qx "deb $suite"
}

# Status 0 when `apt-get update` fetched a binary package index of suite $1.
apt_suite_fetched() {
  local suite=$1 policy
  shift
  policy=$(apt-cache "$@" policy 2>/dev/null) || return 2
  printf '%s\n' "$policy" | grep -q "release .*n=$suite\(,\|\$\)"
}

# Command line: `bash scripts/apt-backports.sh configured|fetched SUITE [apt options...]`
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  case "${1:-}" in
    configured) shift && apt_has_binary_suite "$@" ;;
    fetched) shift && apt_suite_fetched "$@" ;;
    *) echo "usage: $0 configured|fetched SUITE [apt options...]" >&2 && exit 2 ;;
  esac
fi
