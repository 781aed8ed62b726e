//! What machine the bench ran on, read from `/proc` (Linux); unknown elsewhere.

/// Facts about the machine, for the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Machine {
    /// Logical CPUs the process may use.
    pub cores: usize,
    /// The CPU model name (`/proc/cpuinfo`).
    pub cpu: String,
    /// Total memory (`/proc/meminfo`), in MiB.
    pub memory_mib: u64,
    /// Kernel release (`/proc/sys/kernel/osrelease`).
    pub kernel: String,
}

impl Machine {
    /// Reads the machine's facts; what cannot be read is `unknown`.
    pub fn detect() -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        Machine {
            cores: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
            cpu: cpu_model(&cpuinfo).unwrap_or_else(|| "unknown".into()),
            memory_mib: proc_kib(&meminfo, "MemTotal").map(|k| k / 1024).unwrap_or(0),
            kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .map(|s| s.trim().to_string())
                .unwrap_or_else(|_| "unknown".into()),
        }
    }

    /// One line: `2 cores, AMD EPYC ..., 23.4 GiB, Linux 6.1`.
    pub fn summary(&self) -> String {
        format!(
            "{} cores, {}, {:.1} GiB memory, Linux {}",
            self.cores,
            self.cpu,
            self.memory_mib as f64 / 1024.0,
            self.kernel
        )
    }
}

fn cpu_model(cpuinfo: &str) -> Option<String> {
    cpuinfo
        .lines()
        .find_map(|l| {
            l.split_once(':')
                .filter(|(k, _)| k.trim() == "model name")
                .map(|(_, v)| v.trim().to_string())
        })
        .filter(|m| !m.is_empty())
}

/// A `Key:  1234 kB` value from a `/proc` status-like file, in KiB.
pub fn proc_kib(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        if k.trim() != key {
            return None;
        }
        v.split_whitespace().next()?.parse().ok()
    })
}

/// This process's peak resident set size (`VmHWM`), in KiB.
pub fn peak_rss_kib() -> Option<u64> {
    proc_kib(&std::fs::read_to_string("/proc/self/status").ok()?, "VmHWM")
}

/// This process's current resident set size (`VmRSS`), in KiB.
pub fn rss_kib() -> Option<u64> {
    proc_kib(&std::fs::read_to_string("/proc/self/status").ok()?, "VmRSS")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_proc_style_values() {
        let status = "Name:\tx\nVmHWM:\t   12345 kB\nVmRSS:\t 100 kB\n";
        assert_eq!(proc_kib(status, "VmHWM"), Some(12345));
        assert_eq!(proc_kib(status, "VmRSS"), Some(100));
        assert_eq!(proc_kib(status, "VmSwap"), None);
        assert_eq!(
            cpu_model("processor\t: 0\nmodel name\t: Some CPU @ 2GHz\n").as_deref(),
            Some("Some CPU @ 2GHz")
        );
    }
}
