"""`banditkit tune`: Optuna studies over a policy's knobs (docs/tune.md).

`spaces` (the knob spaces, one per simulate policy name), `objective` (what a trial measures:
simulated regret or an off-policy value on a log), `study` (the study in the store's database,
trials by ask/tell, locally or as Ray tasks), `serveconfig` (the best knobs as a serve config),
`plot` (the optimisation history). Optuna and Ray are imported only by `study` and `cli`, on
use: they come with the `distributed` extra.
"""
