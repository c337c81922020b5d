"""What a container unit's ExecStart= and ExecStopPost= run:

    PYTHON -sSE .../hostctl/launcher/entry.py launch|cleanup [--user] NAME

the same as `hostctl launch NAME`, started the lean way. The `hostctl` console script
would cost every container start about 15 ms more: the interpreter's site module (the
.pth files of every site-packages) and the script's own `import re`. Here the directory
holding the hostctl package goes on sys.path by hand, and the site module is run only
when a start needs the full path (hostctl.cli.main.unit_main), whose imports come from
other site-packages (PyYAML, urllib3, ...).
"""

import os
import sys

if __name__ == "__main__":
    # ps, top and `systemctl status` show the launcher as "hostctl", not "python3".
    # (PR_SET_NAME without ctypes, whose import costs a start about 3 ms)
    with open("/proc/self/comm", "w") as comm:
        comm.write("hostctl")
    sys.path[0] = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from hostctl.cli.main import unit_main

    sys.exit(unit_main(sys.argv[1:]))
