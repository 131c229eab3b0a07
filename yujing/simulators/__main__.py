"""`python -m yujing.simulators`: the same as `yujing simulate`."""

import typer

from yujing.simulators.cli import simulate

typer.run(simulate)
