"""Run policies: pure decisions the reconciler applies, one concern per module.

- ``schedulability``: pods the scheduler cannot place → ``Schedulable=False`` with its message.
- ``restart``: a failed rank restarts every rank together, counted against ``runPolicy.backoffLimit``.
- ``deadlines``: ``activeDeadlineSeconds`` and ``preRunningDeadlineSeconds``.
- ``ttl``: when a finished run is deleted.
- ``queueing``: who owns the workload's ``suspend`` field (the operator, or a queue such as Kueue).

Each takes plain values and returns a decision; none calls the API server, so each is tested by tables.
"""
