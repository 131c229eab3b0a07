"""How stages run, not what they do: the stage shape, the one consume loop with its retry
policy, the periodic loop for background helpers, the supervisor that restarts a failed
stage, and the system alerts with which the pipeline reports on itself.

A package of its own rather than modules beside runtime.py: `runtime` wires concrete stages
(it imports every stage package), while these modules are imported by the stages, so they
must import none of them."""
