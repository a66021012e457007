"""The contract between the operator image and the trainer image.

Everything that both sides must spell the same way lives here, once:

- :mod:`.vocabulary`: phase names, rulesets, maps, network families, metric names;
- :mod:`.schema`: the API model bases (camelCase, CEL rules beside pydantic validators);
- :mod:`.game`: the game (``GameSpec``) and its registry key (``GameKey``);
- :mod:`.promotion`: the gate's policy (``PromotionSpec``, ``SprtSpec``) and what it measured;
- :mod:`.run`: the run config the operator writes (``run.json``) and the phase result it reads back.

The operator generates its CRDs from these models and the trainer reads its
run config through them, so a field cannot mean one thing on one side and
another on the other (tests/unit/test_contract.py). Only the standard library
and pydantic are imported here: the operator image has no torch, and the
engine imports the vocabulary.
"""
