import sys

from mnist_data_cli import main

sys.exit(main())
