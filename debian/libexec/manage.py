"""manage.py for the installed /usr/bin commands, without the caller's directory on sys.path.

Run as `python -I` by /opt/vpp-maglev/libexec/command: isolated from the caller's PYTHON*
variables and user site-packages. Then Celery's Django fix-up, which runs when maglev_site is
imported, puts os.getcwd() first on sys.path; for a command run in a directory that holds, say,
a yaml.py or a health/ directory, that would import those instead of the installed code (in
/tmp, someone else's code). So the path is put back as it was, and only then does Django run.
"""

import os
import sys

APP = "/opt/vpp-maglev/app"

sys.path.insert(0, APP)
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "maglev_site.settings")
before = list(sys.path)
import maglev_site  # noqa: E402, F401  (Celery's fix-up edits sys.path here)

sys.path[:] = before + [p for p in sys.path if p not in before and p != os.getcwd()]
sys.argv[0] = os.path.join(APP, "manage.py")

from django.core.management import execute_from_command_line  # noqa: E402

execute_from_command_line(sys.argv)
