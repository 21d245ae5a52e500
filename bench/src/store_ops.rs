//! How many Redis commands a measured run cost per request (v3 only): the
//! proof, under load, that `/user` reads the store once and writes nothing.

use e2e::{Redis, RespValue};

/// Calls per command since the last `CONFIG RESETSTAT`, from `INFO commandstats`.
pub fn command_calls(redis: &Redis) -> Vec<(String, u64)> {
    let RespValue::Bulk(raw) = redis.command(&["INFO", "commandstats"]) else {
        return Vec::new();
    };
    parse_commandstats(&String::from_utf8_lossy(&raw))
}

pub fn reset(redis: &Redis) {
    redis.command(&["CONFIG", "RESETSTAT"]);
}

/// `cmdstat_get:calls=12,usec=...` lines to `("get", 12)`.
fn parse_commandstats(info: &str) -> Vec<(String, u64)> {
    info.lines()
        .filter_map(|l| {
            let (name, rest) = l.trim().strip_prefix("cmdstat_")?.split_once(':')?;
            let calls = rest
                .split(',')
                .find_map(|kv| kv.strip_prefix("calls="))?
                .parse()
                .ok()?;
            Some((name.to_owned(), calls))
        })
        .collect()
}

/// `GET 2000 (1.000/request), EXISTS 0, ...`: the data commands, exact
/// counts first so that a rare write cannot round away.
pub fn per_request(calls: &[(String, u64)], requests: u64) -> String {
    ["get", "exists", "set", "del"]
        .iter()
        .map(|cmd| {
            let n = calls.iter().find(|(c, _)| c == cmd).map_or(0, |(_, n)| *n);
            match n {
                0 => format!("{} 0", cmd.to_uppercase()),
                n => format!(
                    "{} {n} ({:.3}/request)",
                    cmd.to_uppercase(),
                    n as f64 / requests.max(1) as f64
                ),
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_per_request() {
        let info = "# Commandstats\r\ncmdstat_get:calls=2000,usec=900,usec_per_call=0.45\r\n\
                    cmdstat_config:calls=1,usec=5\r\ncmdstat_set:calls=1,usec=3\r\n";
        let calls = parse_commandstats(info);
        assert_eq!(calls[0], ("get".to_string(), 2000));
        assert_eq!(
            per_request(&calls, 2000),
            "GET 2000 (1.000/request), EXISTS 0, SET 1 (0.001/request), DEL 0"
        );
    }
}
