#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: xenlab developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: lab_network
short_description: The local lab's private L2 network inside network namespaces
version_added: 0.1.0
description:
  - Creates (or removes) the lab's network namespace with a bridge and its gateway address, tap devices for
    QEMU virtual machines, and one namespace per container host joined to the bridge by a veth pair.
  - Nothing is created in the host's own network namespace, so the lab never touches the host's network.
  - The module is idempotent, only missing pieces are created; O(state=absent) removes the namespaces, which removes
    every device inside them.
author: xenlab developers (@xenlab)
extends_documentation_fragment:
  - xenlab.migration.attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
options:
  netns:
    description: Name of the lab's namespace (holds the bridge and the taps).
    type: str
    required: true
  bridge:
    description: Name of the bridge inside O(netns).
    type: str
    default: xlbr0
  address:
    description: Gateway address of the bridge with prefix length, for example V(192.168.77.1/24).
    type: str
    required: true
  taps:
    description: Tap devices to create on the bridge (one per QEMU virtual machine).
    type: list
    elements: str
    default: []
  hosts:
    description: Namespaces for container hosts, each joined to the bridge by a veth pair.
    type: list
    elements: dict
    default: []
    suboptions:
      netns:
        description: Name of the host's namespace.
        type: str
        required: true
      address:
        description: The host's address with prefix length.
        type: str
        required: true
      port:
        description: Name of the veth end on the bridge (at most 15 characters).
        type: str
        required: true
  state:
    description: Whether the network exists.
    type: str
    choices: [present, absent]
    default: present
seealso:
  - name: ip-netns(8)
    description: Network namespace management.
    link: https://man7.org/linux/man-pages/man8/ip-netns.8.html
"""

EXAMPLES = r"""
- name: Lab network with two VM taps and a storage host
  xenlab.migration.lab_network:
    netns: xenlab
    address: 192.168.77.1/24
    taps: [tap-source, tap-target]
    hosts:
      - {netns: xenlab-san, address: 192.168.77.20/24, port: vp-san}
"""

RETURN = r"""
actions:
  description: The C(ip) commands that were run (or would be, in check mode).
  type: list
  elements: str
  returned: always
  sample: ["ip netns add xenlab"]
"""

import ipaddress
import json
import os

from ansible.module_utils.basic import AnsibleModule


class Net(object):
    def __init__(self, module):
        self.module = module
        self.actions = []

    def ip(self, *args, **kw):
        cmd = ["ip"] + list(args)
        self.actions.append(" ".join(cmd))
        if self.module.check_mode:
            return
        rc, out, err = self.module.run_command(cmd, environ_update={"LC_ALL": "C"})
        if rc != 0 and not kw.get("ok_fail"):
            self.module.fail_json(msg="%s failed: %s" % (" ".join(cmd), err.strip()), cmd=cmd, rc=rc,
                                  stderr=err, actions=self.actions)

    def query(self, ns, *args):
        cmd = ["ip", "-j", "-n", ns] + list(args)
        rc, out, err = self.module.run_command(cmd, environ_update={"LC_ALL": "C"})
        if rc != 0:
            return []
        try:
            return json.loads(out or "[]")
        except ValueError:
            self.module.fail_json(msg="unexpected output from %s" % " ".join(cmd), stdout=out)

    @staticmethod
    def ns_exists(ns):
        return os.path.exists("/run/netns/%s" % ns)

    def links(self, ns):
        if not self.ns_exists(ns):
            return {}
        return dict((l["ifname"], l) for l in self.query(ns, "addr", "show"))

    def ensure_ns(self, ns):
        if not self.ns_exists(ns):
            self.ip("netns", "add", ns)
            self.ip("-n", ns, "link", "set", "lo", "up")

    def ensure_addr(self, ns, dev, cidr, link):
        iface = ipaddress.ip_interface(cidr)
        have = set("%s/%s" % (a["local"], a["prefixlen"]) for a in (link or {}).get("addr_info", []))
        if str(iface) not in have:
            self.ip("-n", ns, "addr", "add", str(iface), "dev", dev)


def validate(module):
    p = module.params
    try:
        gw = ipaddress.ip_interface(p["address"])
        for h in p["hosts"]:
            iface = ipaddress.ip_interface(h["address"])
            if iface.network != gw.network:
                module.fail_json(msg="host %s address %s is not in the lab network %s" % (h["netns"], iface, gw.network))
    except ValueError as exc:
        module.fail_json(msg="bad address: %s" % exc)
    for name in p["taps"] + [h["port"] for h in p["hosts"]] + [p["bridge"]]:
        if not 0 < len(name) <= 15:
            module.fail_json(msg="interface name %r must be 1 to 15 characters" % name)
    return gw


def main():
    module = AnsibleModule(
        argument_spec=dict(
            netns=dict(type="str", required=True),
            bridge=dict(type="str", default="xlbr0"),
            address=dict(type="str", required=True),
            taps=dict(type="list", elements="str", default=[]),
            hosts=dict(type="list", elements="dict", default=[], options=dict(
                netns=dict(type="str", required=True),
                address=dict(type="str", required=True),
                port=dict(type="str", required=True),
            )),
            state=dict(type="str", default="present", choices=["present", "absent"]),
        ),
        supports_check_mode=True,
    )
    p = module.params
    if os.geteuid() != 0:
        module.fail_json(msg="lab_network needs root (it creates network namespaces)")
    net = Net(module)
    lab, br = p["netns"], p["bridge"]

    if p["state"] == "absent":
        for ns in [h["netns"] for h in p["hosts"]] + [lab]:
            if net.ns_exists(ns):
                net.ip("netns", "delete", ns)
        module.exit_json(changed=bool(net.actions), actions=net.actions)

    gw = validate(module)
    net.ensure_ns(lab)
    links = net.links(lab)
    if br not in links:
        net.ip("-n", lab, "link", "add", br, "type", "bridge")
    net.ensure_addr(lab, br, str(gw), links.get(br))
    if br not in links or "UP" not in links[br].get("flags", []):
        net.ip("-n", lab, "link", "set", br, "up")
    for tap in p["taps"]:
        if tap not in links:
            net.ip("-n", lab, "tuntap", "add", "dev", tap, "mode", "tap")
        if links.get(tap, {}).get("master") != br or "UP" not in links.get(tap, {}).get("flags", []):
            net.ip("-n", lab, "link", "set", tap, "master", br, "up")
    for h in p["hosts"]:
        ns, port = h["netns"], h["port"]
        net.ensure_ns(ns)
        inner = net.links(ns)
        if port not in links:
            if "eth0" in inner:
                net.ip("-n", ns, "link", "delete", "eth0")
                inner = {}
            net.ip("link", "add", port, "netns", lab, "type", "veth", "peer", "name", "eth0", "netns", ns)
        if links.get(port, {}).get("master") != br or "UP" not in links.get(port, {}).get("flags", []):
            net.ip("-n", lab, "link", "set", port, "master", br, "up")
        net.ensure_addr(ns, "eth0", h["address"], inner.get("eth0"))
        if "UP" not in inner.get("eth0", {}).get("flags", []):
            net.ip("-n", ns, "link", "set", "eth0", "up")
        routes = net.query(ns, "route", "show", "default") if net.ns_exists(ns) else []
        if not routes:
            net.ip("-n", ns, "route", "replace", "default", "via", str(gw.ip))
    module.exit_json(changed=bool(net.actions), actions=net.actions)


if __name__ == "__main__":
    main()
