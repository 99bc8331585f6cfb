"""params.yaml as typed config: the dataclasses and loading (config.py), the typed reader with its clear errors
(typed.py), the rules between fields (rules.py), the sizes data and models must agree on (sizes.py) and the
`section.key=value` overrides of the command line (overrides.py)."""
