"""A module in dendrite_sim/commands/ becomes a `dendrite-sim` sub-command (one file per command)."""

import types

from dendrite_sim import cli, commands


def test_discovered_command_is_parsed_and_dispatched(monkeypatch, capsys):
    seen = {}

    def add_arguments(parser):
        parser.add_argument("--times", type=int, default=1)

    def run(args):
        seen["times"] = args.times
        print("hello " * args.times)
        return 3

    fake = types.SimpleNamespace(NAME="hello", HELP="say hello", add_arguments=add_arguments, run=run)
    monkeypatch.setattr(commands, "discover", lambda: [fake])
    monkeypatch.setattr(cli, "_COMMANDS", dict(cli._COMMANDS))   # leave the real table as it was
    assert cli.main(["hello", "--times", "2"]) == 3
    assert seen == {"times": 2}
    assert capsys.readouterr().out.count("hello") == 2


def test_discover_skips_modules_without_the_command_face():
    names = [m.NAME for m in commands.discover()]
    assert names == sorted(names)
    assert all(n not in ("run", "check", "list", "export", "docs") for n in names)
