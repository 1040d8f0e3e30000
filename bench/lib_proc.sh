# shellcheck shell=bash
# Per-process readings for the benchmarks (sourced). A process that has gone reads as 0.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; } # utime + stime, in clock ticks
rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
# The kernel's default TCP congestion control: with BBR, some large bursts on loopback wait
# 60-90 ms in the sender's kernel (docs/operations.md), which can decide a p99.
tcp_cc() { sysctl -n net.ipv4.tcp_congestion_control 2>/dev/null || echo unknown; }
