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
    assert cli.main(["hello", "--times", "2"]) == 3
    assert seen == {"times": 2}
    assert capsys.readouterr().out.count("hello") == 2

