"""Unit tests: the nftables firewall remediation logic (blocks, plan, nft text, nft -j parsing, protection)."""

import difflib
import json
import os

import pytest

from ansible_collections.portwarden.compliance.plugins.module_utils import remediate_firewall as rf

# ---- real `nft -j` output, captured from nftables 1.0.6 (Debian bookworm) in a scratch namespace -------------
# FULL_JSON: `nft -j list table inet portwarden` after loading nft_script() of the seven blocks of FULL below.
# EMPTY_JSON: the same after loading nft_script([]). DRIFT_JSON: FULL after
#   nft add rule inet portwarden input tcp dport 22 accept
#   nft add set inet portwarden extra '{ type inet_service; }'
#   nft add element inet portwarden tcp_ports '{ 900 comment "hand-made" }'
# FULL_JSON_WITHOUT_COUNTERS: FULL_JSON as the table was written before its sets counted packets per element.
# TABLES_JSON: `nft -j list tables` with a foreign table inet t2 and ours.

FULL_JSON = (
    '{"nftables": [{"metainfo": {"version": "1.0.6", "release_name": "Lester Gooch #5", "json_schema_version": 1}}, {"table": {"family"'
    ': "inet", "name": "portwarden", "handle": 2}}, {"set": {"family": "inet", "name": "tcp_ports", "table": "portwarden", "type": "ine'
    't_service", "handle": 2, "elem": [{"elem": {"val": 856, "comment": "rule=r1", "counter": {"packets": 0, "bytes": 0}}}], "stmt": [{'
    '"counter": null}]}}, {"set": {"family": "inet", "name": "tcp_ports_v4", "table": "portwarden", "type": "inet_service", "handle": 3'
    ', "stmt": [{"counter": null}]}}, {"set": {"family": "inet", "name": "tcp_ports_v6", "table": "portwarden", "type": "inet_service",'
    ' "handle": 4, "stmt": [{"counter": null}]}}, {"set": {"family": "inet", "name": "tcp_addr_v4", "table": "portwarden", "type": ["ip'
    'v4_addr", "inet_service"], "handle": 5, "elem": [{"elem": {"val": {"concat": ["127.0.0.1", 858]}, "counter": {"packets": 0, "bytes'
    '": 0}}}], "stmt": [{"counter": null}]}}, {"set": {"family": "inet", "name": "tcp_addr_v6", "table": "portwarden", "type": ["ipv6_a'
    'ddr", "inet_service"], "handle": 6, "elem": [{"elem": {"val": {"concat": ["::1", 858]}, "comment": "rule=r3", "counter": {"packets'
    '": 0, "bytes": 0}}}], "stmt": [{"counter": null}]}}, {"set": {"family": "inet", "name": "udp_ports", "table": "portwarden", "type"'
    ': "inet_service", "handle": 7, "stmt": [{"counter": null}]}}, {"set": {"family": "inet", "name": "udp_ports_v4", "table": "portwar'
    'den", "type": "inet_service", "handle": 8, "elem": [{"elem": {"val": 857, "comment": "rule=r2", "counter": {"packets": 0, "bytes":'
    ' 0}}}], "stmt": [{"counter": null}]}}, {"set": {"family": "inet", "name": "udp_ports_v6", "table": "portwarden", "type": "inet_ser'
    'vice", "handle": 9, "elem": [{"elem": {"val": 859, "counter": {"packets": 0, "bytes": 0}}}], "stmt": [{"counter": null}]}}, {"set"'
    ': {"family": "inet", "name": "udp_addr_v4", "table": "portwarden", "type": ["ipv4_addr", "inet_service"], "handle": 10, "elem": [{'
    '"elem": {"val": {"concat": ["10.1.2.3", 860]}, "comment": "rule=x.y-z_1", "counter": {"packets": 0, "bytes": 0}}}], "stmt": [{"cou'
    'nter": null}]}}, {"set": {"family": "inet", "name": "udp_addr_v6", "table": "portwarden", "type": ["ipv6_addr", "inet_service"], "'
    'handle": 11, "elem": [{"elem": {"val": {"concat": ["2001:db8::5", 861]}, "counter": {"packets": 0, "bytes": 0}}}], "stmt": [{"coun'
    'ter": null}]}}, {"chain": {"family": "inet", "table": "portwarden", "name": "input", "handle": 1, "type": "filter", "hook": "input'
    '", "prio": -10, "policy": "accept"}}, {"rule": {"family": "inet", "table": "portwarden", "chain": "input", "handle": 12, "expr": ['
    '{"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}}, "right": "@tcp_ports"}}, {"drop": null}]}}, {"r'
    'ule": {"family": "inet", "table": "portwarden", "chain": "input", "handle": 13, "expr": [{"match": {"op": "==", "left": {"meta": {'
    '"key": "nfproto"}}, "right": "ipv4"}}, {"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}}, "right":'
    ' "@tcp_ports_v4"}}, {"drop": null}]}}, {"rule": {"family": "inet", "table": "portwarden", "chain": "input", "handle": 14, "expr": '
    '[{"match": {"op": "==", "left": {"meta": {"key": "nfproto"}}, "right": "ipv6"}}, {"match": {"op": "==", "left": {"payload": {"prot'
    'ocol": "tcp", "field": "dport"}}, "right": "@tcp_ports_v6"}}, {"drop": null}]}}, {"rule": {"family": "inet", "table": "portwarden"'
    ', "chain": "input", "handle": 15, "expr": [{"match": {"op": "==", "left": {"concat": [{"payload": {"protocol": "ip", "field": "dad'
    'dr"}}, {"payload": {"protocol": "tcp", "field": "dport"}}]}, "right": "@tcp_addr_v4"}}, {"drop": null}]}}, {"rule": {"family": "in'
    'et", "table": "portwarden", "chain": "input", "handle": 16, "expr": [{"match": {"op": "==", "left": {"concat": [{"payload": {"prot'
    'ocol": "ip6", "field": "daddr"}}, {"payload": {"protocol": "tcp", "field": "dport"}}]}, "right": "@tcp_addr_v6"}}, {"drop": null}]'
    '}}, {"rule": {"family": "inet", "table": "portwarden", "chain": "input", "handle": 17, "expr": [{"match": {"op": "==", "left": {"p'
    'ayload": {"protocol": "udp", "field": "dport"}}, "right": "@udp_ports"}}, {"drop": null}]}}, {"rule": {"family": "inet", "table": '
    '"portwarden", "chain": "input", "handle": 18, "expr": [{"match": {"op": "==", "left": {"meta": {"key": "nfproto"}}, "right": "ipv4'
    '"}}, {"match": {"op": "==", "left": {"payload": {"protocol": "udp", "field": "dport"}}, "right": "@udp_ports_v4"}}, {"drop": null}'
    ']}}, {"rule": {"family": "inet", "table": "portwarden", "chain": "input", "handle": 19, "expr": [{"match": {"op": "==", "left": {"'
    'meta": {"key": "nfproto"}}, "right": "ipv6"}}, {"match": {"op": "==", "left": {"payload": {"protocol": "udp", "field": "dport"}}, '
    '"right": "@udp_ports_v6"}}, {"drop": null}]}}, {"rule": {"family": "inet", "table": "portwarden", "chain": "input", "handle": 20, '
    '"expr": [{"match": {"op": "==", "left": {"concat": [{"payload": {"protocol": "ip", "field": "daddr"}}, {"payload": {"protocol": "u'
    'dp", "field": "dport"}}]}, "right": "@udp_addr_v4"}}, {"drop": null}]}}, {"rule": {"family": "inet", "table": "portwarden", "chain'
    '": "input", "handle": 21, "expr": [{"match": {"op": "==", "left": {"concat": [{"payload": {"protocol": "ip6", "field": "daddr"}}, '
    '{"payload": {"protocol": "udp", "field": "dport"}}]}, "right": "@udp_addr_v6"}}, {"drop": null}]}}]}'
)

EMPTY_JSON = (
    '{"nftables": [{"metainfo": {"version": "1.0.6", "release_name": "Lester Gooch #5", "json_schema_version": 1}}, {"table": {"family"'
    ': "inet", "name": "portwarden", "handle": 3}}, {"set": {"family": "inet", "name": "tcp_ports", "table": "portwarden", "type": "ine'
    't_service", "handle": 2, "stmt": [{"counter": null}]}}, {"set": {"family": "inet", "name": "tcp_ports_v4", "table": "portwarden", '
    '"type": "inet_service", "handle": 3, "stmt": [{"counter": null}]}}, {"set": {"family": "inet", "name": "tcp_ports_v6", "table": "p'
    'ortwarden", "type": "inet_service", "handle": 4, "stmt": [{"counter": null}]}}, {"set": {"family": "inet", "name": "tcp_addr_v4", '
    '"table": "portwarden", "type": ["ipv4_addr", "inet_service"], "handle": 5, "stmt": [{"counter": null}]}}, {"set": {"family": "inet'
    '", "name": "tcp_addr_v6", "table": "portwarden", "type": ["ipv6_addr", "inet_service"], "handle": 6, "stmt": [{"counter": null}]}}'
    ', {"set": {"family": "inet", "name": "udp_ports", "table": "portwarden", "type": "inet_service", "handle": 7, "stmt": [{"counter":'
    ' null}]}}, {"set": {"family": "inet", "name": "udp_ports_v4", "table": "portwarden", "type": "inet_service", "handle": 8, "stmt": '
    '[{"counter": null}]}}, {"set": {"family": "inet", "name": "udp_ports_v6", "table": "portwarden", "type": "inet_service", "handle":'
    ' 9, "stmt": [{"counter": null}]}}, {"set": {"family": "inet", "name": "udp_addr_v4", "table": "portwarden", "type": ["ipv4_addr", '
    '"inet_service"], "handle": 10, "stmt": [{"counter": null}]}}, {"set": {"family": "inet", "name": "udp_addr_v6", "table": "portward'
    'en", "type": ["ipv6_addr", "inet_service"], "handle": 11, "stmt": [{"counter": null}]}}, {"chain": {"family": "inet", "table": "po'
    'rtwarden", "name": "input", "handle": 1, "type": "filter", "hook": "input", "prio": -10, "policy": "accept"}}, {"rule": {"family":'
    ' "inet", "table": "portwarden", "chain": "input", "handle": 12, "expr": [{"match": {"op": "==", "left": {"payload": {"protocol": "'
    'tcp", "field": "dport"}}, "right": "@tcp_ports"}}, {"drop": null}]}}, {"rule": {"family": "inet", "table": "portwarden", "chain": '
    '"input", "handle": 13, "expr": [{"match": {"op": "==", "left": {"meta": {"key": "nfproto"}}, "right": "ipv4"}}, {"match": {"op": "'
    '==", "left": {"payload": {"protocol": "tcp", "field": "dport"}}, "right": "@tcp_ports_v4"}}, {"drop": null}]}}, {"rule": {"family"'
    ': "inet", "table": "portwarden", "chain": "input", "handle": 14, "expr": [{"match": {"op": "==", "left": {"meta": {"key": "nfproto'
    '"}}, "right": "ipv6"}}, {"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}}, "right": "@tcp_ports_v6'
    '"}}, {"drop": null}]}}, {"rule": {"family": "inet", "table": "portwarden", "chain": "input", "handle": 15, "expr": [{"match": {"op'
    '": "==", "left": {"concat": [{"payload": {"protocol": "ip", "field": "daddr"}}, {"payload": {"protocol": "tcp", "field": "dport"}}'
    ']}, "right": "@tcp_addr_v4"}}, {"drop": null}]}}, {"rule": {"family": "inet", "table": "portwarden", "chain": "input", "handle": 1'
    '6, "expr": [{"match": {"op": "==", "left": {"concat": [{"payload": {"protocol": "ip6", "field": "daddr"}}, {"payload": {"protocol"'
    ': "tcp", "field": "dport"}}]}, "right": "@tcp_addr_v6"}}, {"drop": null}]}}, {"rule": {"family": "inet", "table": "portwarden", "c'
    'hain": "input", "handle": 17, "expr": [{"match": {"op": "==", "left": {"payload": {"protocol": "udp", "field": "dport"}}, "right":'
    ' "@udp_ports"}}, {"drop": null}]}}, {"rule": {"family": "inet", "table": "portwarden", "chain": "input", "handle": 18, "expr": [{"'
    'match": {"op": "==", "left": {"meta": {"key": "nfproto"}}, "right": "ipv4"}}, {"match": {"op": "==", "left": {"payload": {"protoco'
    'l": "udp", "field": "dport"}}, "right": "@udp_ports_v4"}}, {"drop": null}]}}, {"rule": {"family": "inet", "table": "portwarden", "'
    'chain": "input", "handle": 19, "expr": [{"match": {"op": "==", "left": {"meta": {"key": "nfproto"}}, "right": "ipv6"}}, {"match": '
    '{"op": "==", "left": {"payload": {"protocol": "udp", "field": "dport"}}, "right": "@udp_ports_v6"}}, {"drop": null}]}}, {"rule": {'
    '"family": "inet", "table": "portwarden", "chain": "input", "handle": 20, "expr": [{"match": {"op": "==", "left": {"concat": [{"pay'
    'load": {"protocol": "ip", "field": "daddr"}}, {"payload": {"protocol": "udp", "field": "dport"}}]}, "right": "@udp_addr_v4"}}, {"d'
    'rop": null}]}}, {"rule": {"family": "inet", "table": "portwarden", "chain": "input", "handle": 21, "expr": [{"match": {"op": "==",'
    ' "left": {"concat": [{"payload": {"protocol": "ip6", "field": "daddr"}}, {"payload": {"protocol": "udp", "field": "dport"}}]}, "ri'
    'ght": "@udp_addr_v6"}}, {"drop": null}]}}]}'
)

DRIFT_JSON = (
    '{"nftables": [{"metainfo": {"version": "1.0.6", "release_name": "Lester Gooch #5", "json_schema_version": 1}}, {"table": {"family"'
    ': "inet", "name": "portwarden", "handle": 2}}, {"set": {"family": "inet", "name": "tcp_ports", "table": "portwarden", "type": "ine'
    't_service", "handle": 2, "elem": [{"elem": {"val": 856, "comment": "rule=r1", "counter": {"packets": 0, "bytes": 0}}}, {"elem": {"'
    'val": 900, "comment": "hand-made", "counter": {"packets": 0, "bytes": 0}}}], "stmt": [{"counter": null}]}}, {"set": {"family": "in'
    'et", "name": "tcp_ports_v4", "table": "portwarden", "type": "inet_service", "handle": 3, "stmt": [{"counter": null}]}}, {"set": {"'
    'family": "inet", "name": "tcp_ports_v6", "table": "portwarden", "type": "inet_service", "handle": 4, "stmt": [{"counter": null}]}}'
    ', {"set": {"family": "inet", "name": "tcp_addr_v4", "table": "portwarden", "type": ["ipv4_addr", "inet_service"], "handle": 5, "el'
    'em": [{"elem": {"val": {"concat": ["127.0.0.1", 858]}, "counter": {"packets": 0, "bytes": 0}}}], "stmt": [{"counter": null}]}}, {"'
    'set": {"family": "inet", "name": "tcp_addr_v6", "table": "portwarden", "type": ["ipv6_addr", "inet_service"], "handle": 6, "elem":'
    ' [{"elem": {"val": {"concat": ["::1", 858]}, "comment": "rule=r3", "counter": {"packets": 0, "bytes": 0}}}], "stmt": [{"counter": '
    'null}]}}, {"set": {"family": "inet", "name": "udp_ports", "table": "portwarden", "type": "inet_service", "handle": 7, "stmt": [{"c'
    'ounter": null}]}}, {"set": {"family": "inet", "name": "udp_ports_v4", "table": "portwarden", "type": "inet_service", "handle": 8, '
    '"elem": [{"elem": {"val": 857, "comment": "rule=r2", "counter": {"packets": 0, "bytes": 0}}}], "stmt": [{"counter": null}]}}, {"se'
    't": {"family": "inet", "name": "udp_ports_v6", "table": "portwarden", "type": "inet_service", "handle": 9, "elem": [{"elem": {"val'
    '": 859, "counter": {"packets": 0, "bytes": 0}}}], "stmt": [{"counter": null}]}}, {"set": {"family": "inet", "name": "udp_addr_v4",'
    ' "table": "portwarden", "type": ["ipv4_addr", "inet_service"], "handle": 10, "elem": [{"elem": {"val": {"concat": ["10.1.2.3", 860'
    ']}, "comment": "rule=x.y-z_1", "counter": {"packets": 0, "bytes": 0}}}], "stmt": [{"counter": null}]}}, {"set": {"family": "inet",'
    ' "name": "udp_addr_v6", "table": "portwarden", "type": ["ipv6_addr", "inet_service"], "handle": 11, "elem": [{"elem": {"val": {"co'
    'ncat": ["2001:db8::5", 861]}, "counter": {"packets": 0, "bytes": 0}}}], "stmt": [{"counter": null}]}}, {"set": {"family": "inet", '
    '"name": "extra", "table": "portwarden", "type": "inet_service", "handle": 23}}, {"chain": {"family": "inet", "table": "portwarden"'
    ', "name": "input", "handle": 1, "type": "filter", "hook": "input", "prio": -10, "policy": "accept"}}, {"rule": {"family": "inet", '
    '"table": "portwarden", "chain": "input", "handle": 12, "expr": [{"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "fi'
    'eld": "dport"}}, "right": "@tcp_ports"}}, {"drop": null}]}}, {"rule": {"family": "inet", "table": "portwarden", "chain": "input", '
    '"handle": 13, "expr": [{"match": {"op": "==", "left": {"meta": {"key": "nfproto"}}, "right": "ipv4"}}, {"match": {"op": "==", "lef'
    't": {"payload": {"protocol": "tcp", "field": "dport"}}, "right": "@tcp_ports_v4"}}, {"drop": null}]}}, {"rule": {"family": "inet",'
    ' "table": "portwarden", "chain": "input", "handle": 14, "expr": [{"match": {"op": "==", "left": {"meta": {"key": "nfproto"}}, "rig'
    'ht": "ipv6"}}, {"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}}, "right": "@tcp_ports_v6"}}, {"dr'
    'op": null}]}}, {"rule": {"family": "inet", "table": "portwarden", "chain": "input", "handle": 15, "expr": [{"match": {"op": "==", '
    '"left": {"concat": [{"payload": {"protocol": "ip", "field": "daddr"}}, {"payload": {"protocol": "tcp", "field": "dport"}}]}, "righ'
    't": "@tcp_addr_v4"}}, {"drop": null}]}}, {"rule": {"family": "inet", "table": "portwarden", "chain": "input", "handle": 16, "expr"'
    ': [{"match": {"op": "==", "left": {"concat": [{"payload": {"protocol": "ip6", "field": "daddr"}}, {"payload": {"protocol": "tcp", '
    '"field": "dport"}}]}, "right": "@tcp_addr_v6"}}, {"drop": null}]}}, {"rule": {"family": "inet", "table": "portwarden", "chain": "i'
    'nput", "handle": 17, "expr": [{"match": {"op": "==", "left": {"payload": {"protocol": "udp", "field": "dport"}}, "right": "@udp_po'
    'rts"}}, {"drop": null}]}}, {"rule": {"family": "inet", "table": "portwarden", "chain": "input", "handle": 18, "expr": [{"match": {'
    '"op": "==", "left": {"meta": {"key": "nfproto"}}, "right": "ipv4"}}, {"match": {"op": "==", "left": {"payload": {"protocol": "udp"'
    ', "field": "dport"}}, "right": "@udp_ports_v4"}}, {"drop": null}]}}, {"rule": {"family": "inet", "table": "portwarden", "chain": "'
    'input", "handle": 19, "expr": [{"match": {"op": "==", "left": {"meta": {"key": "nfproto"}}, "right": "ipv6"}}, {"match": {"op": "='
    '=", "left": {"payload": {"protocol": "udp", "field": "dport"}}, "right": "@udp_ports_v6"}}, {"drop": null}]}}, {"rule": {"family":'
    ' "inet", "table": "portwarden", "chain": "input", "handle": 20, "expr": [{"match": {"op": "==", "left": {"concat": [{"payload": {"'
    'protocol": "ip", "field": "daddr"}}, {"payload": {"protocol": "udp", "field": "dport"}}]}, "right": "@udp_addr_v4"}}, {"drop": nul'
    'l}]}}, {"rule": {"family": "inet", "table": "portwarden", "chain": "input", "handle": 21, "expr": [{"match": {"op": "==", "left": '
    '{"concat": [{"payload": {"protocol": "ip6", "field": "daddr"}}, {"payload": {"protocol": "udp", "field": "dport"}}]}, "right": "@u'
    'dp_addr_v6"}}, {"drop": null}]}}, {"rule": {"family": "inet", "table": "portwarden", "chain": "input", "handle": 22, "expr": [{"ma'
    'tch": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}}, "right": 22}}, {"accept": null}]}}]}'
)

FULL_JSON_WITHOUT_COUNTERS = (
    '{"nftables": [{"metainfo": {"version": "1.0.6", "release_name": "Lester Gooch #5", "json_schema_version": 1}}, {"table": {"family"'
    ': "inet", "name": "portwarden", "handle": 10}}, {"set": {"family": "inet", "name": "tcp_ports", "table": "portwarden", "type": "in'
    'et_service", "handle": 2, "elem": [{"elem": {"val": 856, "comment": "rule=r1"}}]}}, {"set": {"family": "inet", "name": "tcp_ports_'
    'v4", "table": "portwarden", "type": "inet_service", "handle": 3}}, {"set": {"family": "inet", "name": "tcp_ports_v6", "table": "po'
    'rtwarden", "type": "inet_service", "handle": 4}}, {"set": {"family": "inet", "name": "tcp_addr_v4", "table": "portwarden", "type":'
    ' ["ipv4_addr", "inet_service"], "handle": 5, "elem": [{"concat": ["127.0.0.1", 858]}]}}, {"set": {"family": "inet", "name": "tcp_a'
    'ddr_v6", "table": "portwarden", "type": ["ipv6_addr", "inet_service"], "handle": 6, "elem": [{"elem": {"val": {"concat": ["::1", 8'
    '58]}, "comment": "rule=r3"}}]}}, {"set": {"family": "inet", "name": "udp_ports", "table": "portwarden", "type": "inet_service", "h'
    'andle": 7}}, {"set": {"family": "inet", "name": "udp_ports_v4", "table": "portwarden", "type": "inet_service", "handle": 8, "elem"'
    ': [{"elem": {"val": 857, "comment": "rule=r2"}}]}}, {"set": {"family": "inet", "name": "udp_ports_v6", "table": "portwarden", "typ'
    'e": "inet_service", "handle": 9, "elem": [859]}}, {"set": {"family": "inet", "name": "udp_addr_v4", "table": "portwarden", "type":'
    ' ["ipv4_addr", "inet_service"], "handle": 10, "elem": [{"elem": {"val": {"concat": ["10.1.2.3", 860]}, "comment": "rule=x.y-z_1"}}'
    ']}}, {"set": {"family": "inet", "name": "udp_addr_v6", "table": "portwarden", "type": ["ipv6_addr", "inet_service"], "handle": 11,'
    ' "elem": [{"concat": ["2001:db8::5", 861]}]}}, {"chain": {"family": "inet", "table": "portwarden", "name": "input", "handle": 1, "'
    'type": "filter", "hook": "input", "prio": -10, "policy": "accept"}}, {"rule": {"family": "inet", "table": "portwarden", "chain": "'
    'input", "handle": 12, "expr": [{"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}}, "right": "@tcp_p'
    'orts"}}, {"drop": null}]}}, {"rule": {"family": "inet", "table": "portwarden", "chain": "input", "handle": 13, "expr": [{"match": '
    '{"op": "==", "left": {"meta": {"key": "nfproto"}}, "right": "ipv4"}}, {"match": {"op": "==", "left": {"payload": {"protocol": "tcp'
    '", "field": "dport"}}, "right": "@tcp_ports_v4"}}, {"drop": null}]}}, {"rule": {"family": "inet", "table": "portwarden", "chain": '
    '"input", "handle": 14, "expr": [{"match": {"op": "==", "left": {"meta": {"key": "nfproto"}}, "right": "ipv6"}}, {"match": {"op": "'
    '==", "left": {"payload": {"protocol": "tcp", "field": "dport"}}, "right": "@tcp_ports_v6"}}, {"drop": null}]}}, {"rule": {"family"'
    ': "inet", "table": "portwarden", "chain": "input", "handle": 15, "expr": [{"match": {"op": "==", "left": {"concat": [{"payload": {'
    '"protocol": "ip", "field": "daddr"}}, {"payload": {"protocol": "tcp", "field": "dport"}}]}, "right": "@tcp_addr_v4"}}, {"drop": nu'
    'll}]}}, {"rule": {"family": "inet", "table": "portwarden", "chain": "input", "handle": 16, "expr": [{"match": {"op": "==", "left":'
    ' {"concat": [{"payload": {"protocol": "ip6", "field": "daddr"}}, {"payload": {"protocol": "tcp", "field": "dport"}}]}, "right": "@'
    'tcp_addr_v6"}}, {"drop": null}]}}, {"rule": {"family": "inet", "table": "portwarden", "chain": "input", "handle": 17, "expr": [{"m'
    'atch": {"op": "==", "left": {"payload": {"protocol": "udp", "field": "dport"}}, "right": "@udp_ports"}}, {"drop": null}]}}, {"rule'
    '": {"family": "inet", "table": "portwarden", "chain": "input", "handle": 18, "expr": [{"match": {"op": "==", "left": {"meta": {"ke'
    'y": "nfproto"}}, "right": "ipv4"}}, {"match": {"op": "==", "left": {"payload": {"protocol": "udp", "field": "dport"}}, "right": "@'
    'udp_ports_v4"}}, {"drop": null}]}}, {"rule": {"family": "inet", "table": "portwarden", "chain": "input", "handle": 19, "expr": [{"'
    'match": {"op": "==", "left": {"meta": {"key": "nfproto"}}, "right": "ipv6"}}, {"match": {"op": "==", "left": {"payload": {"protoco'
    'l": "udp", "field": "dport"}}, "right": "@udp_ports_v6"}}, {"drop": null}]}}, {"rule": {"family": "inet", "table": "portwarden", "'
    'chain": "input", "handle": 20, "expr": [{"match": {"op": "==", "left": {"concat": [{"payload": {"protocol": "ip", "field": "daddr"'
    '}}, {"payload": {"protocol": "udp", "field": "dport"}}]}, "right": "@udp_addr_v4"}}, {"drop": null}]}}, {"rule": {"family": "inet"'
    ', "table": "portwarden", "chain": "input", "handle": 21, "expr": [{"match": {"op": "==", "left": {"concat": [{"payload": {"protoco'
    'l": "ip6", "field": "daddr"}}, {"payload": {"protocol": "udp", "field": "dport"}}]}, "right": "@udp_addr_v6"}}, {"drop": null}]}}]'
    '}'
)

TABLES_JSON = (
    '{"nftables": [{"metainfo": {"version": "1.0.6", "release_name": "Lester Gooch #5", "json_schema_version": 1}}, {"table": {"family"'
    ': "inet", "name": "t2", "handle": 7}}, {"table": {"family": "inet", "name": "portwarden", "handle": 10}}]}'
)


def block(protocol, port, family=None, address=None, rule=None):
    return {'protocol': protocol, 'port': port, 'family': family, 'address': address, 'rule': rule}


FULL = [
    block('tcp', 856, rule='r1'),
    block('tcp', 858, 'ipv4', '127.0.0.1'),
    block('tcp', 858, 'ipv6', '::1', 'r3'),
    block('udp', 857, 'ipv4', rule='r2'),
    block('udp', 859, 'ipv6'),
    block('udp', 860, 'ipv4', '10.1.2.3', 'x.y-z_1'),
    block('udp', 861, 'ipv6', '2001:db8::5'),
]


# ---- validation ------------------------------------------------------------------------------------------

@pytest.mark.parametrize('item, expected', [
    ({'protocol': 'tcp', 'port': 856}, block('tcp', 856)),
    ({'protocol': 'TCP', 'port': '856', 'rule': 'r1'}, block('tcp', 856, rule='r1')),
    ({'protocol': 'udp', 'port': 857, 'family': 'ipv6'}, block('udp', 857, 'ipv6')),
    ({'protocol': 'tcp', 'port': 858, 'address': '::1'}, block('tcp', 858, 'ipv6', '::1')),
    ({'protocol': 'tcp', 'port': 858, 'address': '[::1]', 'family': 'ipv6'}, block('tcp', 858, 'ipv6', '::1')),
    ({'protocol': 'tcp', 'port': 858, 'address': '2001:DB8:0:0::5'}, block('tcp', 858, 'ipv6', '2001:db8::5')),
    ({'protocol': 'tcp', 'port': 858, 'address': '127.0.0.1', 'family': None}, block('tcp', 858, 'ipv4', '127.0.0.1')),
    # wildcard addresses mean the whole family
    ({'protocol': 'tcp', 'port': 858, 'address': '0.0.0.0'}, block('tcp', 858, 'ipv4')),
    ({'protocol': 'udp', 'port': 858, 'address': '::'}, block('udp', 858, 'ipv6')),
    ({'protocol': 'tcp', 'port': 65535, 'rule': 'a' * rf.RULE_MAX}, block('tcp', 65535, rule='a' * rf.RULE_MAX)),
])
def test_normalise_block(item, expected):
    assert rf.normalise_block(item) == expected


@pytest.mark.parametrize('items, message', [
    ('tcp/856', 'blocks: expected a list'),
    (['tcp/856'], 'blocks[0]: expected a dict'),
    ([{'protocol': 'tcp', 'port': 1}, {'protocol': 'tcp', 'port': 2, 'proto': 'x'}], 'blocks[1]: unknown field(s) proto'),
    ([{'port': 856}], 'blocks[0].protocol: required'),
    ([{'protocol': 'tcp'}], 'blocks[0].port: required'),
    ([{'protocol': 'sctp', 'port': 856}], "blocks[0].protocol: 'sctp' is not a protocol (one of tcp, udp)"),
    ([{'protocol': 'tcp', 'port': 0}], 'blocks[0].port: 0 is not a port number (1-65535)'),
    ([{'protocol': 'tcp', 'port': 65536}], 'blocks[0].port: 65536 is not a port number'),
    ([{'protocol': 'tcp', 'port': True}], 'blocks[0].port: True is not a port number'),
    ([{'protocol': 'tcp', 'port': 'ssh'}], "blocks[0].port: 'ssh' is not a port number"),
    ([{'protocol': 'tcp', 'port': 1, 'family': 'inet'}], "blocks[0].family: 'inet' is not a family"),
    ([{'protocol': 'tcp', 'port': 1, 'address': '10.0.0.0/8'}], "blocks[0].address: '10.0.0.0/8' is not an IP address"),
    ([{'protocol': 'tcp', 'port': 1, 'address': 'localhost'}], "blocks[0].address: 'localhost' is not an IP address"),
    ([{'protocol': 'tcp', 'port': 1, 'address': 'fe80::1%eth0'}], "blocks[0].address: 'fe80::1%eth0' has a scope"),
    ([{'protocol': 'tcp', 'port': 1, 'address': '::ffff:10.0.0.1'}], 'give the IPv4 address 10.0.0.1 instead'),
    ([{'protocol': 'tcp', 'port': 1, 'address': '::1', 'family': 'ipv4'}], "blocks[0].address: '::1' is an ipv6 address but family is ipv4"),
    ([{'protocol': 'tcp', 'port': 1, 'rule': 'has space'}], "blocks[0].rule: 'has space' is not a rule id"),
    ([{'protocol': 'tcp', 'port': 1, 'rule': 'quote"'}], 'blocks[0].rule'),
    ([{'protocol': 'tcp', 'port': 1, 'rule': '-dash'}], 'blocks[0].rule'),
    ([{'protocol': 'tcp', 'port': 1, 'rule': 'a' * (rf.RULE_MAX + 1)}], 'longer than 123 characters'),
    ([{'protocol': 'tcp', 'port': 856, 'rule': 'a'}, {'protocol': 'tcp', 'port': 856, 'rule': 'b'}],
     'blocks[1]: tcp 856 is already listed at blocks[0] with another rule (a, not b)'),
])
def test_normalise_blocks_errors_name_the_item_and_field(items, message):
    with pytest.raises(ValueError) as caught:
        rf.normalise_blocks(items)
    assert message in str(caught.value)


def test_normalise_blocks_dedupes_and_sorts():
    items = [
        {'protocol': 'udp', 'port': 857},
        {'protocol': 'tcp', 'port': 858, 'address': '::1'},
        {'protocol': 'tcp', 'port': 856, 'rule': 'r1'},
        {'protocol': 'tcp', 'port': 856},  # the same block again, without a rule id
        {'protocol': 'tcp', 'port': 858, 'address': '127.0.0.1'},
        {'protocol': 'tcp', 'port': 858, 'family': 'ipv6'},
        {'protocol': 'udp', 'port': 857, 'rule': 'r2'},  # the same block, now with a rule id: it keeps it
    ]
    assert rf.normalise_blocks(items) == [
        block('tcp', 856, rule='r1'),
        block('tcp', 858, 'ipv4', '127.0.0.1'),
        block('tcp', 858, 'ipv6'),
        block('tcp', 858, 'ipv6', '::1'),
        block('udp', 857, rule='r2'),
    ]
    assert rf.normalise_blocks(None) == []


@pytest.mark.parametrize('first, second, same', [
    (block('tcp', 856, rule='a'), block('tcp', 856, rule='b'), True),  # the rule id is not identity
    (block('tcp', 856), block('udp', 856), False),
    (block('tcp', 856), block('tcp', 856, 'ipv4'), False),
    (block('tcp', 856, 'ipv4'), block('tcp', 856, 'ipv4', '127.0.0.1'), False),
    (block('tcp', 856, 'ipv6', '::1'), block('tcp', 856, 'ipv6', '::2'), False),
    (block('tcp', 856), block('tcp', 857), False),
])
def test_block_key(first, second, same):
    assert (rf.block_key(first) == rf.block_key(second)) is same


@pytest.mark.parametrize('value, label', [
    (block('tcp', 856), 'tcp 856'),
    (block('udp', 857, 'ipv4'), 'udp 857 (ipv4)'),
    (block('tcp', 858, 'ipv6', '::1'), 'tcp [::1]:858'),
    (block('tcp', 858, 'ipv4', '127.0.0.1'), 'tcp 127.0.0.1:858'),
])
def test_block_label(value, label):
    assert rf.block_label(value) == label


def test_every_kind_of_block_has_its_set():
    assert [rf.set_for(item).name for item in FULL] == [
        'tcp_ports', 'tcp_addr_v4', 'tcp_addr_v6', 'udp_ports_v4', 'udp_ports_v6', 'udp_addr_v4', 'udp_addr_v6']
    assert len(rf.SETS) == len(rf.SETS_BY_NAME) == 10


# ---- plan ------------------------------------------------------------------------------------------------

A = block('tcp', 856, rule='r1')
B = block('udp', 857, rule='r2')
C = block('tcp', 858, 'ipv6', '::1', 'r3')
A_OTHER_RULE = block('tcp', 856, rule='r9')
A_NO_RULE = block('tcp', 856)


@pytest.mark.parametrize('current, desired, state, exclusive, added, removed, final, lift_all', [
    # present adds what is missing, keeps the rest
    ([], [A, B], 'present', False, [A, B], [], [A, B], False),
    ([A], [A, B], 'present', False, [B], [], [A, B], False),
    ([A, B], [A, B], 'present', False, [], [], [A, B], False),
    ([A, C], [B], 'present', False, [B], [], [A, B, C], False),
    # a new rule id replaces the element (its comment); no rule id keeps the one there
    ([A], [A_OTHER_RULE], 'present', False, [A_OTHER_RULE], [A], [A_OTHER_RULE], False),
    ([A], [A_NO_RULE], 'present', False, [], [], [A], False),
    # exclusive also lifts what is not listed
    ([A, C], [B], 'present', True, [B], [A, C], [B], False),
    ([A, B], [A, B], 'present', True, [], [], [A, B], False),
    ([A, B], [], 'present', True, [], [A, B], [], False),
    # absent lifts the listed blocks whatever their rule id; the rest stays
    ([A, B, C], [A_NO_RULE, C], 'absent', False, [], [A, C], [B], False),
    ([B], [A], 'absent', False, [], [], [B], False),
    ([A, B], [A], 'absent', True, [], [A], [B], False),  # exclusive is ignored
    # absent without blocks lifts everything, and the table
    ([A, B], [], 'absent', False, [], [A, B], [], True),
    ([], [], 'absent', False, [], [], [], True),
])
def test_compute_plan(current, desired, state, exclusive, added, removed, final, lift_all):
    plan = rf.compute_plan(rf.sort_blocks(current), rf.sort_blocks(desired), state, exclusive)
    assert plan == {'added': added, 'removed': removed, 'final': rf.sort_blocks(final), 'lift_all': lift_all}


def test_compute_plan_refuses_an_unknown_state():
    with pytest.raises(ValueError, match="state: 'gone'"):
        rf.compute_plan([], [], 'gone')


# ---- nft text --------------------------------------------------------------------------------------------

def test_render_table_is_the_design_with_sorted_commented_elements():
    text = rf.render_table(list(reversed(FULL)))
    assert text == rf.render_table(FULL)  # deterministic, whatever the input order
    lines = text.splitlines()
    assert lines[0] == 'table inet portwarden {'
    assert '\t\ttype filter hook input priority -10; policy accept;' in lines
    for rule in ('tcp dport @tcp_ports drop', 'meta nfproto ipv4 tcp dport @tcp_ports_v4 drop', 'meta nfproto ipv6 udp dport @udp_ports_v6 drop',
                 'ip daddr . tcp dport @tcp_addr_v4 drop', 'ip6 daddr . udp dport @udp_addr_v6 drop'):
        assert '\t\t' + rule in lines
    assert '\t\t\t856 comment "rule=r1",' in lines
    assert '\t\t\t127.0.0.1 . 858,' in lines
    assert '\t\t\t::1 . 858 comment "rule=r3",' in lines
    assert '\t\t\t10.1.2.3 . 860 comment "rule=x.y-z_1",' in lines
    assert text.count('elements = {') == 7  # empty sets have no elements line
    assert text.count('\tset ') == 10


def test_elements_within_a_set_are_ordered_by_port_then_address():
    blocks = [block('tcp', 900, 'ipv6', '::2'), block('tcp', 80, 'ipv6', '2001:db8::1'), block('tcp', 900, 'ipv6', '::1')]
    lines = [line.strip() for line in rf.render_table(blocks).splitlines() if line.endswith(',')]
    assert lines == ['2001:db8::1 . 80,', '::1 . 900,', '::2 . 900,']


def test_scripts_reset_the_table_in_the_same_transaction():
    script = rf.nft_script(FULL)
    assert script.startswith('table inet portwarden\ndelete table inet portwarden\ntable inet portwarden {\n')
    assert rf.lift_script() == 'table inet portwarden\ndelete table inet portwarden\n'
    persisted = rf.persist_text(FULL)
    assert persisted.endswith(script)
    assert all(line.startswith('#') for line in persisted[:-len(script)].splitlines())


def test_describe_table_for_the_diff():
    assert rf.describe_table(False, FULL) == ''
    assert rf.describe_table(True, FULL) == rf.render_table(FULL)
    assert rf.describe_table(True, []) == rf.render_table([])
    drifted = rf.describe_table(True, FULL, ['set extra is not part of the design'])
    assert drifted == '# differs from the design: set extra is not part of the design\n' + rf.render_table(FULL)
    # before and after of a change differ exactly in the changed element
    before = rf.describe_table(True, [A]).splitlines()
    after = rf.describe_table(True, [A, B]).splitlines()
    changes = [line for line in difflib.ndiff(before, after) if line[:1] in '+-']
    assert changes == ['+ \t\telements = {', '+ \t\t\t857 comment "rule=r2",', '+ \t\t}']


# ---- parsing nft -j output -------------------------------------------------------------------------------

def test_parse_real_table_gives_back_every_block():
    blocks, problems = rf.parse_table(''.join(FULL_JSON))
    assert problems == []
    assert blocks == rf.sort_blocks(FULL)


def test_a_table_written_before_its_sets_counted_packets_is_rebuilt():
    blocks, problems = rf.parse_table(''.join(FULL_JSON_WITHOUT_COUNTERS))
    assert blocks == rf.sort_blocks(FULL)  # every block is kept through the rebuild
    assert problems == ['set %s has no packet counter per element' % spec.name for spec in rf.SETS]
    assert rf.parse_counters(''.join(FULL_JSON_WITHOUT_COUNTERS)) == {}


def test_every_block_has_its_packet_counter():
    assert rf.parse_counters(''.join(FULL_JSON)) == dict((rf.block_key(item), 0) for item in FULL)
    counted = json.loads(''.join(FULL_JSON))
    for item in counted['nftables']:
        for element in (item.get('set') or {}).get('elem') or []:
            if isinstance(element, dict) and element['elem']['val'] == 856:
                element['elem']['counter']['packets'] = 3
            elif isinstance(element, dict) and element['elem']['val'] == {'concat': ['::1', 858]}:
                element['elem']['counter'] = {'packets': -1, 'bytes': 0}  # not a count: left out, never 0
            elif isinstance(element, dict) and element['elem']['val'] == 857:
                element['elem']['counter'] = {'packets': True}
    found = rf.parse_counters(json.dumps(counted))
    assert found[('tcp', '', '', 856)] == 3
    assert ('tcp', 'ipv6', '::1', 858) not in found and ('udp', 'ipv4', '', 857) not in found
    assert rf.parse_counters(''.join(FULL_JSON), rf.TableSpec('other', 'input', 'input', -10)) == {}


def test_every_set_is_rendered_with_a_counter_per_element():
    text = rf.render_table(rf.normalise_blocks(FULL))
    assert text.count('\t\tcounter\n') == len(rf.SETS)


def test_parse_real_empty_table():
    assert rf.parse_table(''.join(EMPTY_JSON)) == ([], [])


def test_parse_real_drifted_table_reports_what_differs():
    blocks, problems = rf.parse_table(''.join(DRIFT_JSON))
    # an element with a foreign comment is a block without a rule id
    assert blocks == rf.sort_blocks([*FULL, block('tcp', 900, rule=None)])
    assert sorted(problems) == ['rule (handle 22) in chain input is not part of the design', 'set extra is not part of the design']


def _design_objects():
    return json.loads(''.join(FULL_JSON))['nftables']


def _with(objects):
    return json.dumps({'nftables': objects})


def test_parse_reports_missing_and_retyped_sets_and_a_changed_chain():
    objects = _design_objects()
    sets = [item for item in objects if 'set' in item]
    objects.remove(next(item for item in sets if item['set']['name'] == 'udp_ports'))
    next(item for item in sets if item['set']['name'] == 'tcp_ports_v4')['set']['type'] = 'ipv4_addr'
    chain = next(item for item in objects if 'chain' in item)['chain']
    chain['prio'] = 0
    chain['policy'] = 'drop'
    blocks, problems = rf.parse_table(_with(objects))
    assert 'set udp_ports is missing' in problems
    assert "set tcp_ports_v4 has type 'ipv4_addr', not 'inet_service'" in problems
    assert ('chain input is type filter hook input priority 0 policy drop, '
            'not type filter hook input priority -10 policy accept') in problems
    assert blocks == rf.sort_blocks(FULL)


def test_parse_reports_a_missing_chain_and_a_missing_rule():
    objects = [item for item in _design_objects() if 'chain' not in item and 'rule' not in item]
    assert 'chain input is missing' in rf.parse_table(_with(objects))[1]
    objects = _design_objects()
    objects.remove(next(item for item in objects if 'rule' in item))
    assert rf.parse_table(_with(objects))[1] == ['chain input does not hold the rules of the design']


def test_parse_reports_unreadable_elements_and_keeps_the_rest():
    objects = _design_objects()
    tcp_ports = next(item for item in objects if item.get('set', {}).get('name') == 'tcp_ports')['set']
    tcp_ports['elem'].append({'range': [1000, 1010]})
    tcp_ports['elem'].append(22)
    tcp_ports['elem'].append({'elem': {'val': 23, 'comment': 'rule='}})
    blocks, problems = rf.parse_table(_with(objects))
    assert problems == ['set tcp_ports holds an element that is not a block: {"range": [1000, 1010]}']
    assert block('tcp', 22) in blocks and block('tcp', 23) in blocks


@pytest.mark.parametrize('text, message', [
    ('not json', 'not JSON'),
    ('[]', 'no "nftables" list'),
    ('{"other": 1}', 'no "nftables" list'),
])
def test_parse_refuses_what_is_not_nft_json(text, message):
    with pytest.raises(ValueError, match=message):
        rf.parse_table(text)


@pytest.mark.parametrize('objects, exists', [
    (None, True),  # the real listing
    ([{'metainfo': {}}], False),
    ([{'table': {'family': 'ip', 'name': 'portwarden'}}], False),
    ([{'table': {'family': 'inet', 'name': 'portwarden2'}}], False),
    ([{'table': {'family': 'inet', 'name': 'portwarden'}}], True),
])
def test_table_exists(objects, exists):
    text = ''.join(TABLES_JSON) if objects is None else _with(objects)
    assert rf.table_exists(text) is exists


# ---- protection ------------------------------------------------------------------------------------------

@pytest.mark.parametrize('value, port', [
    ('10.0.0.1 50000 10.0.0.2 22', 22),
    ('10.0.0.1 50000 10.0.0.2 2222', 2222),
    ('2001:db8::1 50000 2001:db8::2 22', 22),
    ('fe80::1%eth0 50000 fe80::2%eth0 22', 22),
    ('  10.0.0.1   50000 10.0.0.2 856\n', 856),
    ('UNKNOWN 65535 UNKNOWN 65535', None),
    ('', None),
    (None, None),
    ('10.0.0.1 50000 10.0.0.2', None),
    ('10.0.0.1 50000 10.0.0.2 22 extra', None),
    ('10.0.0.1 50000 10.0.0.2 ssh', None),
    ('10.0.0.1 50000 10.0.0.2 0', None),
    ('10.0.0.1 50000 10.0.0.2 70000', None),
    ('host 50000 10.0.0.2 22', None),
])
def test_parse_ssh_connection(value, port):
    assert rf.parse_ssh_connection(value) == port


def _fake_proc(root, chain):
    """``chain`` is [(pid, ppid, environ dict or None)], nearest first."""
    for pid, ppid, environ in chain:
        directory = root / str(pid)
        directory.mkdir()
        (directory / 'stat').write_text('%d (sh (x) y) S %d 1 1 0 -1' % (pid, ppid))
        if environ is not None:
            (directory / 'environ').write_bytes(b''.join(b'%s=%s\0' % (k.encode(), v.encode()) for k, v in environ.items()))


def test_find_ssh_connection_prefers_the_own_environment(tmp_path):
    assert rf.find_ssh_connection({'SSH_CONNECTION': '10.0.0.1 5 10.0.0.2 2222'}, str(tmp_path), 100) == (2222, 'SSH_CONNECTION')
    # set but unparsable: no protection, and no search either
    _fake_proc(tmp_path, [(100, 90, None), (90, 1, {'SSH_CONNECTION': '10.0.0.1 5 10.0.0.2 22'})])
    assert rf.find_ssh_connection({'SSH_CONNECTION': 'UNKNOWN 65535 UNKNOWN 65535'}, str(tmp_path), 100) == (None, None)


def test_find_ssh_connection_searches_the_ancestors(tmp_path):
    # python (100) <- sudo (90, reset environment) <- login shell (80) <- sshd (70)
    _fake_proc(tmp_path, [(100, 90, None), (90, 80, {'PATH': '/usr/bin'}),
                          (80, 70, {'HOME': '/root', 'SSH_CONNECTION': '10.0.0.1 50000 10.0.0.2 2200'}), (70, 1, {})])
    assert rf.find_ssh_connection({}, str(tmp_path), 100) == (2200, 'SSH_CONNECTION of process 80')


def test_find_ssh_connection_without_ssh(tmp_path):
    _fake_proc(tmp_path, [(100, 90, None), (90, 80, {'PATH': '/usr/bin'}), (80, 1, {})])
    assert rf.find_ssh_connection({}, str(tmp_path), 100) == (None, None)
    # a loop in the (fake) tree ends the search
    loop = tmp_path / 'loop'
    loop.mkdir()
    _fake_proc(loop, [(100, 90, None), (90, 100, {})])
    assert rf.find_ssh_connection({}, str(loop), 100) == (None, None)
    assert rf.find_ssh_connection({}, str(tmp_path / 'nothing'), 100) == (None, None)


def test_find_ssh_connection_reads_this_machine():
    port, source = rf.find_ssh_connection(os.environ)
    assert (port is None) == (source is None)


@pytest.mark.parametrize('items, expected', [
    ([], []),
    (None, []),
    ([{'protocol': 'tcp', 'port': 22}, {'protocol': 'UDP', 'port': '53'}, {'protocol': 'tcp', 'port': 22}], [('tcp', 22), ('udp', 53)]),
])
def test_normalise_protected_ports(items, expected):
    assert rf.normalise_protected_ports(items) == expected


@pytest.mark.parametrize('items, message', [
    ({'protocol': 'tcp', 'port': 22}, 'protected_ports: expected a list'),
    ([22], 'protected_ports[0]: expected a dict'),
    ([{'protocol': 'tcp', 'port': 22}, {'protocol': 'tcp'}], 'protected_ports[1].port: required'),
    ([{'protocol': 'icmp', 'port': 22}], "protected_ports[0].protocol: 'icmp' is not a protocol"),
    ([{'protocol': 'tcp', 'port': 99999}], 'protected_ports[0].port: 99999 is not a port number'),
    ([{'protocol': 'tcp', 'port': 22, 'family': 'ipv4'}], 'protected_ports[0]: unknown field(s) family'),
])
def test_normalise_protected_ports_errors(items, message):
    with pytest.raises(ValueError) as caught:
        rf.normalise_protected_ports(items)
    assert message in str(caught.value)


def test_filter_protected_refuses_protected_ports_in_any_family_or_address():
    blocks = rf.normalise_blocks([
        {'protocol': 'tcp', 'port': 22, 'rule': 'no-ssh'},
        {'protocol': 'tcp', 'port': 22, 'address': '::1'},
        {'protocol': 'udp', 'port': 22},  # the SSH connection is TCP: UDP 22 is not protected by it
        {'protocol': 'udp', 'port': 53, 'family': 'ipv4'},
        {'protocol': 'tcp', 'port': 53},
        {'protocol': 'tcp', 'port': 856},
    ])
    allowed, refused = rf.filter_protected(blocks, [('udp', 53)], ssh_port=22, ssh_source='SSH_CONNECTION of process 80')
    assert allowed == [block('tcp', 53), block('tcp', 856), block('udp', 22)]
    ssh_reason = 'tcp port 22 carries the live SSH connection (SSH_CONNECTION of process 80); blocking it would cut the connection'
    assert refused == [
        dict(block('tcp', 22, rule='no-ssh'), reason=ssh_reason),
        dict(block('tcp', 22, 'ipv6', '::1'), reason=ssh_reason),
        dict(block('udp', 53, 'ipv4'), reason='udp port 53 is in protected_ports'),
    ]


def test_filter_protected_without_protection_allows_everything():
    assert rf.filter_protected(FULL) == (FULL, [])
    assert rf.filter_protected(FULL, [], None) == (FULL, [])
