"""Pre-prod baselines and the comparison of production with them.

- `sketch`: a mergeable latency quantile sketch;
- `shape` / `contract`: the response contract learned from JSON bodies;
- `record`: a step's baseline and how runs make one; `window`: recent production latency;
- `compare`: findings for a production run; `client`: sending fragments to a store or agent.
"""
