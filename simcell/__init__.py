"""The simulated bin-picking cell: Mikado piles, the appliance's own cycle, a suction gripper.

`binpick simcell run|report|sweep|gif` measure the thesis's picking metrics (Table C.2) in
simulation, for our method and the industrial baselines, through one closed loop.
"""
