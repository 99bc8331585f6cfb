"""Training on several processes or machines: torchrun's launch (launch.py) and, inside each process, the process
group and its collectives (group.py)."""
