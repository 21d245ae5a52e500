//! Replays inputs against a target and prints what the app answered:
//! `cargo run -p fuzz --example replay -- <target> <file>...`

fn main() {
    let mut args = std::env::args().skip(1);
    let target = args.next().expect("usage: replay <target> <file>...");
    let run = fuzz::TARGETS
        .iter()
        .find(|(name, _)| *name == target)
        .map(|(_, run)| *run)
        .unwrap_or_else(|| panic!("unknown target {target}"));
    for file in args {
        let data = std::fs::read(&file).unwrap_or_else(|e| panic!("{file}: {e}"));
        if target == "app_request" {
            let (req, response) = fuzz::targets::app_response(&data);
            println!("{} {} -> {}", req.method, req.path, response.status);
            for (name, value) in &response.headers {
                println!("{name}: {value}");
            }
            println!("\n{}", response.body_text());
        }
        run(&data);
        println!("{file}: no panic");
    }
}
