"""bench/vclcost.py: reading callgrind's counts of a Varnish HIT (the run itself is `make bench`'s)."""

import pytest

from bench import vclcost

# The head of a dump written by `callgrind_control -d` (callgrind 3.19), trimmed.
DUMP = """\
# callgrind format
version: 1
creator: callgrind-3.19.0
pid: 2143
cmd:  varnishd -F -j none -n /tmp/vc/varnishd -a 127.0.0.1:6097
part: 2

desc: I1 cache:
desc: Timerange: Basic block 232928634 - 282740693
desc: Trigger: dump

positions: line
events: Ir
summary: 30611597
"""

# Lines of `callgrind_annotate --inclusive=yes` for the same dump, trimmed.
ANNOTATED = """\
--------------------------------------------------------------------------------
Ir                    file:function
--------------------------------------------------------------------------------
30,611,597 (100.0%)  ???:0x000000000007ffb0 [/usr/sbin/varnishd]
 4,134,600 (13.51%)  /v/vcl_shop.17961/vgc.c:VGC_function_vcl_deliver [/v/vcl_shop.17961/vgc.so]
 4,134,600 (13.51%)  /v/vcl_shop.17961/vgc.c:VGC_function_vcl_deliver
 2,343,000 ( 7.65%)  /v/vcl_shop.17961/vgc.c:VGC_function_add_5f_server_5f_timing [/v/vcl_shop.17961/vgc.so]
 1,057,800 ( 3.46%)  /v/vcl_shop.17961/vgc.c:VGC_function_vcl_5f_builtin_5f_recv [/v/vcl_shop.17961/vgc.so]
   165,600 ( 0.54%)  /v/vcl_shop.17961/vgc.c:VGC_function_pick_5f_grace [/v/vcl_shop.17961/vgc.so]
 1,234,000 ( 4.03%)  ???:VRT_SetHdr [/usr/sbin/varnishd]
"""


def test_the_total_is_the_dumps_summary():
    assert vclcost.total_instructions(DUMP) == 30_611_597


def test_a_final_dump_gives_its_totals_line():
    assert vclcost.total_instructions("events: Ir\ntotals: 1234\n") == 1234


def test_a_dump_without_a_count_is_refused():
    with pytest.raises(ValueError, match="no summary"):
        vclcost.total_instructions("events: Ir\n")


def test_each_subroutine_costs_its_inclusive_count_per_request_under_its_own_name():
    costs = vclcost.subroutine_costs(ANNOTATED, requests=300)
    assert costs == {"vcl_deliver": 13_782, "add_server_timing": 7_810, "vcl_builtin_recv": 3_526,
                     "pick_grace": 552}


def test_the_child_is_found_in_the_managers_log(tmp_path):
    varnish = vclcost.CallgrindVarnish(tmp_path, 6097, tmp_path / "floor.vcl")
    varnish.log_path.write_text("Debug: Child (2143) Started\nInfo: Child (2143) said Child starts\n"
                                "Debug: Child (2200) Started\n")
    assert varnish.child_pid() == 2200  # the child that runs now, after a restart
