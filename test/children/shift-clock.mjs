// Preload (node --import): moves this process's clocks by TOLLGATE_TEST_CLOCK_SHIFT_MS, as a server whose
// clock is off would be. Date.now and performance.now both move, so every clock core could read is skewed.
const shift = Number(process.env.TOLLGATE_TEST_CLOCK_SHIFT_MS ?? 0)
const dateNow = Date.now
Date.now = () => dateNow() + shift
const performanceNow = performance.now.bind(performance)
performance.now = () => performanceNow() + shift
