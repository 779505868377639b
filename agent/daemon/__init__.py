"""The agent: signed orders tell a host what to do, the agent does it and reports, signed.

Modules: `order` (the order document: make, co-sign, parse, check; FORMAT.md §11), `hostid`
(who this host is), `trust` (the `orders-trusted/` key set and the agent's configuration, kept
apart from evidence trust), `statusdoc` (signed status documents and heartbeats), `journal`
(order ids accepted and their progress, durable: at most once across restarts), `actions`
(what each action does, through the library), `runner` (the loop: spool, vault polling,
heartbeat, re-applying drifted isolation). The CLI is `agent/commands/{order,agent,fleet}.py`.
"""
