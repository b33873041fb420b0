import sys
from pathlib import Path

# ft_inference is copied into the image, not installed: import it from the source tree.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
