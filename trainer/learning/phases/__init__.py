"""The four training phases: bootstrap, hybrid, self_play, continuous.

A phase is a restartable stage (KataGo-style) that reads and writes only the
artifact store: replay shards, checkpoints, the phase's final weights and its
ONNX candidate. ``ouro phase NAME`` (one Kubernetes Job) and ``ouro train``
(all phases in-process on a local store) call the same :func:`runner.run_phase`.

Modules:

* :mod:`.config`     typed settings of a run and of each phase, built from the
                     operator's ``RunConfig`` or from an ``ouro train`` preset
* :mod:`.policy`     batched, safety-masked network inference shared by self-play and evaluation
* :mod:`.selfplay`   batched rollouts: every game advances together, one forward per turn
* :mod:`.imitation`  cross-entropy on the teacher's moves + value regression (bootstrap)
* :mod:`.ppo`        GAE and the clipped PPO loss with an entropy bonus (hybrid, self_play, continuous)
* :mod:`.bootstrap`, :mod:`.reinforce`  the phase loops
* :mod:`.runner`     start weights, candidate export, the phase result
* :mod:`.execute`    the one entry point both commands call
"""
