"""The operator's commands over OLD and NEW: `cointoss migrate` (the safe mover) and `status`.

`mover` is the claim/apply/ack engine, `lua` its atomic server-side steps, `migrate` and
`status` the commands.
"""
