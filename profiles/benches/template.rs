//! Cost of turning a reused buffer into frame n (`Template::write`), the generator's
//! per-packet work, for every shipped profile. `cargo bench -p profiles`.
//! Prints the median of 7 runs of 2^20 frames, in ns per frame.

use std::hint::black_box;
use std::time::Instant;

use profiles::profile::SHIPPED;
use profiles::{Profile, Template, TemplateOptions};

fn main() {
    println!("{:<18} {:>12} {:>12}", "profile", "ns/frame", "Mframes/s");
    for (name, _) in SHIPPED {
        let Ok(p) = Profile::load(name) else { continue };
        let Ok(t) = Template::new(&p, TemplateOptions::default()) else {
            continue;
        };
        let mut buf = vec![0u8; t.len()];
        t.fill(&mut buf);
        let frames = 1u64 << 20;
        let mut runs: Vec<f64> = (0..7)
            .map(|_| {
                let start = Instant::now();
                for n in 0..frames {
                    t.write(black_box(&mut buf), n, None);
                }
                start.elapsed().as_nanos() as f64 / frames as f64
            })
            .collect();
        runs.sort_by(f64::total_cmp);
        let median = runs[runs.len() / 2];
        println!("{name:<18} {median:>12.1} {:>12.1}", 1e3 / median);
    }
}
