//! Network namespaces for partition tests: each node runs in its own
//! namespace, linked by a veth pair to a bridge in the root namespace, so
//! partitions are made by the kernel (blackhole routes inside the
//! namespaces), not by a switch inside the node.
//!
//! Layout for subnet `X` (unique per [`Netns`]): bridge `alb<X>` with
//! 10.77.X.1/24 in the root namespace (the test process reaches every node's
//! API through it); namespace `al<X>n<i>` holding `eth0` = 10.77.X.(10+i),
//! whose other end `al<X>v<i>` is a port of the bridge. Everything is
//! removed on drop, also when a test panics.

use std::net::Ipv4Addr;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

static NEXT_SUBNET: AtomicU32 = AtomicU32::new(0);

/// Why namespaces cannot be used here.
#[derive(Debug)]
pub struct Unavailable(pub String);

/// Runs `ip ARGS`; `Err(stderr)` on failure.
fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run ip: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Whether this process may create network namespaces (root with `ip`).
pub fn available() -> Result<(), Unavailable> {
    let uid = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    if uid != "0" {
        return Err(Unavailable(format!("not root (uid {uid:?})")));
    }
    if ip(&["netns", "list"]).is_err() {
        return Err(Unavailable("`ip netns` does not work here".into()));
    }
    Ok(())
}

/// `n` namespaces on one bridge; torn down on drop.
pub struct Netns {
    subnet: u8,
    names: Vec<String>,
}

impl Netns {
    /// Creates the bridge and `n` namespaces. `Err` only when namespaces
    /// are unavailable; any other failure panics (a broken test setup must
    /// not pass as skipped).
    pub fn create(n: usize) -> Result<Netns, Unavailable> {
        assert!(n <= 200, "at most 200 nodes per subnet");
        available()?;
        // Parallel tests (threads and processes) each claim a subnet by
        // creating its bridge: the kernel refuses a second one of that name.
        let start = std::process::id() * 31 + NEXT_SUBNET.fetch_add(1, Ordering::Relaxed) * 7;
        let mut net = None;
        for k in 0..254 {
            let subnet = ((start + k) % 254 + 1) as u8;
            if ip(&["link", "add", &format!("alb{subnet}"), "type", "bridge"]).is_ok() {
                net = Some(Netns {
                    subnet,
                    names: Vec::new(),
                });
                break;
            }
        }
        let mut net = net.expect("no free 10.77.X.0/24 subnet for a test bridge");
        let bridge = net.bridge();
        let must = |r: Result<(), String>| r.unwrap_or_else(|e| panic!("netns setup: {e}"));
        must(ip(&[
            "addr",
            "add",
            &format!("10.77.{}.1/24", net.subnet),
            "dev",
            &bridge,
        ]));
        must(ip(&["link", "set", &bridge, "up"]));
        for i in 0..n {
            let name = format!("al{}n{i}", net.subnet);
            let veth = format!("al{}v{i}", net.subnet);
            // A namespace left by a killed test run of the same subnet.
            let _ = ip(&["netns", "del", &name]);
            must(ip(&["netns", "add", &name]));
            net.names.push(name.clone());
            must(ip(&[
                "link", "add", &veth, "type", "veth", "peer", "name", "eth0", "netns", &name,
            ]));
            must(ip(&["link", "set", &veth, "master", &bridge, "up"]));
            must(ip(&[
                "-n",
                &name,
                "addr",
                "add",
                &format!("{}/24", net.addr(i)),
                "dev",
                "eth0",
            ]));
            must(ip(&["-n", &name, "link", "set", "eth0", "up"]));
            must(ip(&["-n", &name, "link", "set", "lo", "up"]));
        }
        Ok(net)
    }

    fn bridge(&self) -> String {
        format!("alb{}", self.subnet)
    }

    /// Namespace of node `i` (for `ip netns exec`).
    pub fn name(&self, i: usize) -> &str {
        &self.names[i]
    }

    /// Address of node `i`.
    pub fn addr(&self, i: usize) -> Ipv4Addr {
        Ipv4Addr::new(10, 77, self.subnet, 10 + i as u8)
    }

    /// Cuts every link between nodes of different `sides`: inside each
    /// namespace, a blackhole route to each node of the other sides. The
    /// root namespace (the test's API calls) still reaches everyone.
    pub fn partition(&self, sides: &[&[usize]]) {
        for (s, side) in sides.iter().enumerate() {
            for &i in *side {
                for (t, other) in sides.iter().enumerate() {
                    if s == t {
                        continue;
                    }
                    for &j in *other {
                        ip(&[
                            "-n",
                            self.name(i),
                            "route",
                            "add",
                            "blackhole",
                            &format!("{}/32", self.addr(j)),
                        ])
                        .unwrap_or_else(|e| panic!("partition: {e}"));
                    }
                }
            }
        }
    }

    /// Removes every blackhole route: the network is whole again.
    pub fn heal(&self) {
        for (i, name) in self.names.iter().enumerate() {
            for j in 0..self.names.len() {
                if i != j {
                    // Absent when these two were on the same side.
                    let _ = ip(&[
                        "-n",
                        name,
                        "route",
                        "del",
                        "blackhole",
                        &format!("{}/32", self.addr(j)),
                    ]);
                }
            }
        }
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        // Deleting a namespace destroys its veth end, and with it the pair.
        for name in &self.names {
            let _ = ip(&["netns", "del", name]);
        }
        let _ = ip(&["link", "del", &self.bridge()]);
    }
}
