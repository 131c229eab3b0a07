"""Hidden hazards (隐患) and alarm follow-up: records, their closed-loop lifecycle, evidence,
time limits with tiered escalation, and figures (issue 9)."""
