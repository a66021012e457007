"""The `ouro` console script: dispatches to one module per verb."""
import sys
def main(argv=None) -> int:
    print("hello", argv if argv is not None else sys.argv[1:])
    return 0
