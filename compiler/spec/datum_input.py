"""The datum engine's view of a pipeline's input tree (spec model -> `compiler.datums`)."""

from __future__ import annotations

from compiler.datums.glob import compile_glob
from compiler.datums.plan import CRON_GLOB, Combination, DatumInput, Source
from compiler.spec.model import CronInput, Input, PfsInput


def datum_input(node: Input) -> DatumInput:
    """Sources and combinations for `plan_datums`. Raises GlobError for a bad glob.

    A cron input reads its tick repo with glob "/*" on the default branch, one datum per tick
    file (Pachyderm 2.x `createCron`; the tick files are named by their RFC 3339 time).
    """
    if isinstance(node, PfsInput):
        return Source(node.name, node.repo, node.branch, compile_glob(node.glob),
                      join_on=node.join_on, group_by=node.group_by,
                      outer_join=node.outer_join, lazy=node.lazy,
                      empty_files=node.empty_files, s3=node.s3)
    if isinstance(node, CronInput):
        return Source(node.name, node.repo, None, compile_glob(CRON_GLOB))
    return Combination(node.kind, tuple(datum_input(m) for m in node.members))
