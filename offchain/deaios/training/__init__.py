"""deaios training: DiLoCoX, low-communication data-parallel training whose workers meet only through the
deaios network (docs/training.md).

A job (config) trains a byte-level transformer (model) on a corpus stored in the log (corpus). Each of k
workers runs H inner AdamW steps per round from the round's global weights (inner), compresses its
per-stage pseudo-gradient (compression, stages), uploads it as a storage file and records it in the
job's KV round ledger (ledger); the averaged pseudo-gradient feeds each stage's outer Nesterov step
(outer), one round late when the one-step delay overlaps the exchange with the next round's training
(worker). Checkpoints go to the log and the model registry (`AI_<job>` in KV).
"""
