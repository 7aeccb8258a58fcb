//! The pendulum identification run ([`embedded_core::run`]) as firmware for a Cortex-M4F
//! (`thumbv7em-none-eabihf`, QEMU `netduinoplus2`; output and exit status through
//! semihosting), and as a host program printing the same lines (for comparing the two).
//!
//! Output: one `step` line per Levenberg-Marquardt step (loss in `{:e}` with every digit of
//! the f32), the storage sizes, the cost of a step (firmware: instructions, read from SysTick
//! under QEMU's `-icount shift=0`; host: wall-clock nanoseconds), the painted-stack peak
//! (firmware), and a final `RESULT ok|FAIL ...` line; the exit status is 0 only for `ok`
//! (loss fell at least 100x, no step failed).
#![cfg_attr(target_os = "none", no_std, no_main)]

use embedded_core::{run, sizes, State, Summary, STEPS};

/// The loss must fall at least this much over the run.
const FACTOR: f32 = 100.0;

fn verdict(s: &Summary) -> bool {
    s.failed == 0 && s.loss_final.is_finite() && s.loss0 / s.loss_final >= FACTOR
}

/// Median, minimum and maximum of the steps' costs (an insertion sort: a few bytes of
/// flash, where `sort_unstable` would add kilobytes to the firmware).
fn spread(costs: &mut [u64; STEPS]) -> (u64, u64, u64) {
    for i in 1..STEPS {
        let mut j = i;
        while j > 0 && costs[j - 1] > costs[j] {
            costs.swap(j - 1, j);
            j -= 1;
        }
    }
    (costs[STEPS / 2], costs[0], costs[STEPS - 1])
}

#[cfg(target_os = "none")]
mod firmware {
    use super::*;
    use core::ptr::{addr_of, addr_of_mut};
    use cortex_m::peripheral::{syst::SystClkSource, SYST};
    use cortex_m_rt::{entry, exception, ExceptionFrame};
    use cortex_m_semihosting::{debug, hprintln};

    static mut STATE: State = State::ZERO;

    /// Word painted over the free stack before the run.
    const PAINT: u32 = 0xC0FF_EE55;

    extern "C" {
        /// End of `.bss`/`.data` in RAM (cortex-m-rt's heap start; no heap is used): the
        /// stack grows down towards it.
        static mut __sheap: u32;
        /// Top of the stack (end of RAM).
        static _stack_start: u32;
    }

    /// Paints every free stack word below the current stack pointer (minus a margin for
    /// this function's own frame); returns the painted range.
    #[inline(never)]
    fn paint() -> (*mut u32, *mut u32) {
        let lo = addr_of_mut!(__sheap);
        let sp = cortex_m::register::msp::read() as *mut u32;
        let hi = sp.wrapping_sub(64);
        let mut p = lo;
        while p < hi {
            // SAFETY: [lo, hi) is RAM between the end of the statics and the live stack.
            unsafe { p.write_volatile(PAINT) };
            p = p.wrapping_add(1);
        }
        (lo, hi)
    }

    /// Bytes of stack ever used: from the top of RAM down to the lowest overwritten word.
    fn peak(lo: *mut u32) -> usize {
        let mut p = lo;
        // SAFETY: reads the painted range back, below the live stack.
        while unsafe { p.read_volatile() } == PAINT {
            p = p.wrapping_add(1);
        }
        addr_of!(_stack_start) as usize - p as usize
    }

    /// SysTick's reload value: the 24-bit maximum.
    const RELOAD: u32 = 0x00FF_FFFF;

    /// A 64-bit count of SysTick ticks from its 24-bit down-counter (correct as long as it is
    /// read at least once every 2^24 ticks: about 10^8 instructions under QEMU).
    struct Ticks {
        last: u32,
        total: u64,
    }

    impl Ticks {
        fn start(syst: &mut SYST) -> Ticks {
            syst.set_clock_source(SystClkSource::Core);
            syst.set_reload(RELOAD);
            syst.clear_current();
            syst.enable_counter();
            Ticks {
                last: SYST::get_current(),
                total: 0,
            }
        }

        fn read(&mut self) -> u64 {
            let now = SYST::get_current();
            self.total += u64::from(self.last.wrapping_sub(now) & RELOAD);
            self.last = now;
            self.total
        }
    }

    /// `2 n` instructions (`subs`, `bne`) and nothing else: the calibration loop.
    #[inline(never)]
    fn spin(n: u32) {
        // SAFETY: a register-only countdown loop.
        unsafe {
            core::arch::asm!("2:", "subs {0}, {0}, #1", "bne 2b", inout(reg) n => _,
                options(nomem, nostack));
        }
    }

    #[entry]
    fn main() -> ! {
        let (lo, _) = paint();
        let mut syst = cortex_m::Peripherals::take().unwrap().SYST;
        let mut ticks = Ticks::start(&mut syst);
        // Ticks per instruction, from a loop of known length: under `-icount shift=0` QEMU's
        // clock advances one nanosecond per instruction, so this is exact there.
        const SPIN: u32 = 1_000_000;
        let t0 = ticks.read();
        spin(SPIN);
        let spin_ticks = ticks.read() - t0;
        // SAFETY: the only reference to STATE, taken once.
        let state = unsafe { &mut *addr_of_mut!(STATE) };
        let (net, lm, ws, gn) = sizes();
        hprintln!("target thumbv7em-none-eabihf (Cortex-M4F)");
        hprintln!(
            "sizes net {} lm {} workspace {} gauss-newton {}",
            net,
            lm,
            ws,
            gn
        );
        let mut costs = [0u64; STEPS];
        let s = run(
            state,
            || ticks.read(),
            |t| {
                costs[t.step] = t.cost;
                hprintln!(
                    "step {} loss {:e} lambda {:e} accepted {}",
                    t.step,
                    t.loss,
                    t.lambda,
                    t.accepted
                );
            },
        );
        let (med, min, max) = spread(&mut costs);
        // Integer arithmetic only: f64 would pull software floating point into the firmware.
        let insns = |t: u64| t * u64::from(2 * SPIN) / spin_ticks;
        if spin_ticks > 0 {
            hprintln!(
                "cost per step: median {} instructions (min {}, max {}; SysTick {} ticks per {} instructions)",
                insns(med),
                insns(min),
                insns(max),
                spin_ticks,
                2 * SPIN
            );
        } else {
            hprintln!("cost per step: unknown (SysTick did not advance)");
        }
        let stack = peak(lo);
        hprintln!("stack peak {} bytes", stack);
        let ok = verdict(&s);
        hprintln!("RESULT {} {}", if ok { "ok" } else { "FAIL" }, s);
        debug::exit(if ok {
            debug::EXIT_SUCCESS
        } else {
            debug::EXIT_FAILURE
        });
        loop {
            cortex_m::asm::wfi();
        }
    }

    #[exception]
    unsafe fn HardFault(ef: &ExceptionFrame) -> ! {
        hprintln!("HardFault at pc {:#010x}", ef.pc());
        debug::exit(debug::EXIT_FAILURE);
        loop {}
    }

    #[panic_handler]
    fn panic(info: &core::panic::PanicInfo) -> ! {
        hprintln!("panic: {}", info);
        debug::exit(debug::EXIT_FAILURE);
        loop {}
    }
}

#[cfg(not(target_os = "none"))]
fn main() {
    let mut state = Box::new(State::ZERO);
    let (net, lm, ws, gn) = sizes();
    println!("target host");
    println!("sizes net {net} lm {lm} workspace {ws} gauss-newton {gn}");
    let clock = std::time::Instant::now();
    let mut costs = [0u64; STEPS];
    let s = run(
        &mut state,
        || clock.elapsed().as_nanos() as u64,
        |t| {
            costs[t.step] = t.cost;
            println!(
                "step {} loss {:e} lambda {:e} accepted {}",
                t.step, t.loss, t.lambda, t.accepted
            );
        },
    );
    let (med, min, max) = spread(&mut costs);
    println!("cost per step: median {med} ns (min {min}, max {max}; host wall clock)");
    let ok = verdict(&s);
    println!("RESULT {} {s}", if ok { "ok" } else { "FAIL" });
    std::process::exit(if ok { 0 } else { 1 });
}
