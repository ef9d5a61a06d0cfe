# shellcheck shell=bash
# lib.sh: sourced by smoke.sh and run-long.sh; what a target runs with
# fuzz_max_len TARGET: the -max_len of a target, from the max_len line of tests/fuzz/TARGET.options (just above the real
# input limit of its parser, with the reason in that file's comment); a planted copy (smoke.sh --self-test) uses
# fuzz_prefer's. A target without it is an error: a new fuzz_<name>.c cannot run with a made-up length.
fuzz_max_len() {
    local name=$1 opts n
    case $name in
    fuzz_planted_*) name=fuzz_prefer ;;
    esac
    opts=$(dirname "${BASH_SOURCE[0]}")/$name.options
    n=$(sed -n 's/^max_len *= *\([0-9][0-9]*\) *$/\1/p' "$opts" 2>/dev/null)
    if [ -z "$n" ]; then
        echo "$1: no max_len line in $opts" >&2
        return 1
    fi
    echo "$n"
}
