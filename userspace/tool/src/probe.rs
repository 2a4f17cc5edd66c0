//! `rsynproxy probe`: connect to the backend, read the options of its SYN-ACK off the wire
//! (a raw socket sees the segment itself, not what the local stack made of it), and turn them
//! into the RSYNPROXY arguments and rule set that match the backend.

use rsynproxy_proto::info::{OPT_MSS, OPT_SACK_PERM, OPT_TIMESTAMP, OPT_WSCALE};
use rsynproxy_proto::tcp::{Header, Options, ACK, HDR_LEN, SYN};
use std::io;
use std::mem::size_of;
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// What the backend's SYN-ACK said.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backend {
    /// MSS option, if any.
    pub mss: Option<u16>,
    /// Window scale option, if any (clamped to 14 as every stack does).
    pub wscale: Option<u8>,
    /// SACK permitted.
    pub sack_perm: bool,
    /// Timestamps.
    pub timestamp: bool,
}

impl Backend {
    /// From the parsed options of a SYN-ACK.
    pub fn from_options(o: &Options) -> Self {
        Backend {
            mss: (o.options & OPT_MSS != 0).then_some(o.mss_option),
            wscale: (o.options & OPT_WSCALE != 0).then_some(o.wscale),
            sack_perm: o.options & OPT_SACK_PERM != 0,
            timestamp: o.options & OPT_TIMESTAMP != 0,
        }
    }

    /// The matching target arguments, in the plugin's order.
    pub fn args(&self) -> Vec<String> {
        let mut a = Vec::new();
        if self.sack_perm {
            a.push("--sack-perm".to_string());
        }
        if self.timestamp {
            a.push("--timestamp".to_string());
        }
        if let Some(w) = self.wscale {
            a.push(format!("--wscale {w}"));
        }
        if let Some(m) = self.mss {
            a.push(format!("--mss {m}"));
        }
        a
    }

    /// Remarks on what the proxy can and cannot pass on.
    pub fn notes(&self) -> Vec<&'static str> {
        let mut n = Vec::new();
        if !self.timestamp && (self.sack_perm || self.wscale.is_some()) {
            n.push(
                "the backend does not do timestamps: window scaling and SACK travel in the \
                 timestamp cookie, so clients will be offered neither",
            );
        }
        if self.mss.is_none() {
            n.push("the backend sent no MSS option (536 is assumed by TCP)");
        }
        n
    }
}

/// The complete rule set for `port` on `iface`, filtering `chain` (INPUT or FORWARD).
pub fn rules(v6: bool, iface: &str, port: u16, chain: &str, args: &[String]) -> Vec<String> {
    let ipt = if v6 { "ip6tables" } else { "iptables" };
    let m = format!("-i {iface} -p tcp -m tcp --dport {port}");
    vec![
        "sysctl -w net.netfilter.nf_conntrack_tcp_loose=0".to_string(),
        format!("{ipt} -t raw -A PREROUTING {m} --syn -j CT --notrack"),
        format!(
            "{ipt} -A {chain} {m} -m state --state INVALID,UNTRACKED -j RSYNPROXY {}",
            args.join(" ")
        ),
        format!("{ipt} -A {chain} {m} -m state --state INVALID -j DROP"),
    ]
}

/// Finds the SYN-ACK from `peer` to local port `lport` in a raw TCP datagram (IPv4 raw sockets
/// deliver the IP header, IPv6 ones only the TCP segment).
pub fn match_synack(
    pkt: &[u8],
    v6: bool,
    peer: &SocketAddr,
    lport: u16,
    src: Option<IpAddr>,
) -> Option<Options> {
    let (tcp, from) = if v6 {
        (pkt, src)
    } else {
        let ihl = usize::from(*pkt.first()? & 0xf) * 4;
        if pkt.len() < ihl || pkt.get(9) != Some(&6) {
            return None;
        }
        let s: [u8; 4] = pkt.get(12..16)?.try_into().ok()?;
        (&pkt[ihl..], Some(IpAddr::from(s)))
    };
    if from != Some(peer.ip()) {
        return None;
    }
    let fixed: &[u8; HDR_LEN] = tcp.get(..HDR_LEN)?.try_into().ok()?;
    let h = Header::read(fixed);
    if h.sport != peer.port() || h.dport != lport || !h.has(SYN | ACK, 0) {
        return None;
    }
    let opts = tcp.get(HDR_LEN..HDR_LEN + h.options_len()?)?;
    Some(Options::parse(opts))
}

/// A raw TCP socket (root only): every TCP segment this host receives.
struct RawSocket(libc::c_int);

impl RawSocket {
    fn open(v6: bool, timeout: Duration) -> io::Result<Self> {
        let fam = if v6 { libc::AF_INET6 } else { libc::AF_INET };
        // SAFETY: plain socket(2) call.
        let fd = unsafe { libc::socket(fam, libc::SOCK_RAW, libc::IPPROTO_TCP) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        let s = RawSocket(fd);
        let tv = libc::timeval {
            tv_sec: timeout.as_secs() as _,
            tv_usec: timeout.subsec_micros() as _,
        };
        // SAFETY: a valid fd and a timeval of the right size.
        let r = unsafe {
            libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                (&tv as *const libc::timeval).cast(),
                size_of::<libc::timeval>() as _,
            )
        };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(s)
    }

    /// One datagram and, for IPv6, its source address.
    fn recv(&self, buf: &mut [u8]) -> io::Result<(usize, Option<IpAddr>)> {
        // SAFETY: an all-zero sockaddr_storage is valid.
        let mut from: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
        let mut len = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        // SAFETY: buf and from are valid for the lengths given.
        let n = unsafe {
            libc::recvfrom(
                self.0,
                buf.as_mut_ptr().cast(),
                buf.len(),
                0,
                (&mut from as *mut libc::sockaddr_storage).cast(),
                &mut len,
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        let src = (i32::from(from.ss_family) == libc::AF_INET6).then(|| {
            // SAFETY: the family says it is a sockaddr_in6.
            let a =
                unsafe { &*(&from as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>() };
            IpAddr::from(a.sin6_addr.s6_addr)
        });
        Ok((n as usize, src))
    }
}

impl Drop for RawSocket {
    fn drop(&mut self) {
        // SAFETY: our fd.
        unsafe { libc::close(self.0) };
    }
}

/// Connects to `peer` and returns what its SYN-ACK carried.
pub fn probe(peer: &SocketAddr, timeout: Duration) -> Result<Backend, String> {
    let v6 = peer.is_ipv6();
    // Open first: the SYN-ACK arrives before connect() returns.
    let raw = RawSocket::open(v6, Duration::from_millis(200)).map_err(|e| {
        if e.raw_os_error() == Some(libc::EPERM) {
            "probe reads the SYN-ACK with a raw socket: run it as root (CAP_NET_RAW)".to_string()
        } else {
            format!("raw socket: {e}")
        }
    })?;
    let stream = TcpStream::connect_timeout(peer, timeout)
        .map_err(|e| format!("cannot connect to {peer}: {e}"))?;
    let lport = stream.local_addr().map_err(|e| e.to_string())?.port();
    let deadline = Instant::now() + timeout;
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline {
        match raw.recv(&mut buf) {
            Ok((n, src)) => {
                if let Some(o) = match_synack(&buf[..n], v6, peer, lport, src) {
                    return Ok(Backend::from_options(&o));
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) => {}
            Err(e) => return Err(format!("raw socket: {e}")),
        }
    }
    Err(format!("connected to {peer}, but its SYN-ACK was not seen"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rsynproxy_proto::tcp;

    fn synack(o: &Options) -> Vec<u8> {
        let h = Header {
            sport: 80,
            dport: 40000,
            seq: 1,
            ack_seq: 2,
            flags: SYN | ACK,
            window: 65535,
            ..Header::default()
        };
        let mut seg = [0u8; tcp::MAX_BUILT_LEN];
        let n = tcp::build(&h, o, &mut seg);
        seg[..n].to_vec()
    }

    fn v4(seg: &[u8]) -> Vec<u8> {
        let mut p =
            rsynproxy_proto::wire::ipv4_header([10, 0, 2, 99], [10, 0, 1, 99], 64, seg.len())
                .to_vec();
        p.extend_from_slice(seg);
        p
    }

    #[test]
    fn reads_the_backend_synack() {
        let o = Options {
            options: OPT_MSS | OPT_WSCALE | OPT_SACK_PERM | OPT_TIMESTAMP,
            mss_option: 1460,
            wscale: 7,
            ..Options::default()
        };
        let peer: SocketAddr = "10.0.2.99:80".parse().unwrap();
        let got = match_synack(&v4(&synack(&o)), false, &peer, 40000, None)
            .map(|o| Backend::from_options(&o));
        assert_eq!(
            got,
            Some(Backend {
                mss: Some(1460),
                wscale: Some(7),
                sack_perm: true,
                timestamp: true
            })
        );
        assert_eq!(
            got.unwrap().args(),
            ["--sack-perm", "--timestamp", "--wscale 7", "--mss 1460"]
        );
        // Another port, another peer, or an IPv6 segment from elsewhere: not ours.
        assert!(match_synack(&v4(&synack(&o)), false, &peer, 40001, None).is_none());
        let other: SocketAddr = "10.0.2.98:80".parse().unwrap();
        assert!(match_synack(&v4(&synack(&o)), false, &other, 40000, None).is_none());
        let p6: SocketAddr = "[fd00:2::99]:80".parse().unwrap();
        assert!(match_synack(&synack(&o), true, &p6, 40000, Some(p6.ip())).is_some());
        assert!(match_synack(&synack(&o), true, &p6, 40000, Some(peer.ip())).is_none());
        assert!(match_synack(&[0x45, 0, 0], false, &peer, 40000, None).is_none());
    }

    #[test]
    fn arguments_and_rules() {
        let b = Backend {
            mss: Some(1400),
            wscale: None,
            sack_perm: true,
            timestamp: false,
        };
        assert_eq!(b.args(), ["--sack-perm", "--mss 1400"]);
        assert_eq!(b.notes().len(), 1);
        let r = rules(true, "eth0", 443, "FORWARD", &b.args());
        assert_eq!(r[1], "ip6tables -t raw -A PREROUTING -i eth0 -p tcp -m tcp --dport 443 --syn -j CT --notrack");
        assert_eq!(
            r[2],
            "ip6tables -A FORWARD -i eth0 -p tcp -m tcp --dport 443 -m state --state INVALID,UNTRACKED \
             -j RSYNPROXY --sack-perm --mss 1400"
        );
        let none = Backend {
            mss: None,
            wscale: None,
            sack_perm: false,
            timestamp: false,
        };
        assert!(none.args().is_empty());
        assert_eq!(
            none.notes(),
            ["the backend sent no MSS option (536 is assumed by TCP)"]
        );
    }
}
