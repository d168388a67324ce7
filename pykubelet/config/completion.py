"""Shell completion scripts for ``pykubelet``, generated from the same parser ``run`` uses.

Bash gets a ``complete -F`` function; zsh loads the same function through ``bashcompinit``
(shipped with zsh), so the two never disagree.
"""

from __future__ import annotations

from collections.abc import Iterable

from pykubelet.config.kubelet import build_parser

__all__ = ["completion_script"]

_SUBCOMMANDS = {
    "images": "import list",
    "certs": "ca serving client",
    "completion": "bash zsh",
    "doctor": "--config --kubeconfig --url --read-only-url --output --timeout",
}


def _run_flags() -> list[str]:
    return sorted({o for a in build_parser()._actions for o in a.option_strings if o[:2] == "--"})


def completion_script(shell: str, commands: Iterable[str]) -> str:
    cases = "\n".join(
        f'        {name}) words_="{words}" ;;' for name, words in sorted(_SUBCOMMANDS.items())
    )
    bash = f"""# pykubelet {shell} completion: eval "$(pykubelet completion {shell})"
_pykubelet() {{
    local cur="${{COMP_WORDS[COMP_CWORD]}}" words_=""
    if [ "$COMP_CWORD" -eq 1 ]; then
        words_="{" ".join(sorted(commands))} --help --version"
    else
        case "${{COMP_WORDS[1]}}" in
        run) words_="{" ".join(_run_flags())}" ;;
{cases}
        esac
    fi
    if [ -n "$words_" ] && [ "${{cur#-}}" != "$cur" -o "$COMP_CWORD" -eq 1 -o \\
         "${{COMP_WORDS[1]}}" != run ]; then
        COMPREPLY=($(compgen -W "$words_" -- "$cur"))
    fi
    [ ${{#COMPREPLY[@]}} -eq 0 ] && COMPREPLY=($(compgen -f -- "$cur"))
    return 0
}}
complete -F _pykubelet pykubelet
"""
    if shell == "zsh":
        return "autoload -U +X bashcompinit && bashcompinit\n" + bash
    return bash
