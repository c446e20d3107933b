# -*- coding: utf-8 -*-
# Copyright: xenlab developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Offline stand-in for ansible-test's get-pip bootstrap script.

ansible-test downloads get-pip.py from a host this machine cannot reach; it runs the cached
copy as `python get_pip.py <pip install options>`. This does the same with the interpreter's
own ensurepip, then installs the requested packages from PyPI.
"""

from __future__ import annotations

import ensurepip
import os
import runpy
import sys

if __name__ == '__main__':
    ensurepip.bootstrap(upgrade=True)
    # get-pip's own switches; pip install does not know them.
    args = [a for a in sys.argv[1:] if a not in ('--no-setuptools', '--no-wheel')]
    # ansible-test runs this with a reduced environment: use the system CA bundle (it holds any
    # site CA that pip.conf or PIP_CERT would name) so PyPI is reachable behind TLS proxies.
    bundle = '/etc/ssl/certs/ca-certificates.crt'
    if os.path.exists(bundle):
        args = ['--cert', bundle] + args
    sys.argv = ['pip', 'install'] + args
    runpy.run_module('pip', run_name='__main__', alter_sys=True)
