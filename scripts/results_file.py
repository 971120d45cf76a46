"""The one argument of the results scripts (results_table.py, targets_table.py): a `qmoe bench`
results file, read as JSON; -h / --help prints the calling script's docstring."""
import json
import sys


def load_results(doc):
    """The results file named on the command line, or None after printing doc for --help
    (exits with doc as the message on any other argument count)."""
    if len(sys.argv) == 2 and sys.argv[1] in ("-h", "--help"):
        print(doc)
        return None
    if len(sys.argv) != 2:
        sys.exit(doc)
    with open(sys.argv[1], encoding="utf-8") as f:
        return json.load(f)
