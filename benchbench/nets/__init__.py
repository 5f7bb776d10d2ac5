"""Stacked networks: the networks of several seeds (members) in one module, MLPs and DCGAN-style
convnets sized from the data's shape, each member initialised from its own stream. Imports: api."""
