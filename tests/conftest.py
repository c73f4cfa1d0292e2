# Every test process runs on Syncless's greenlet: installed before pytest's
# plugins or any test module can import the real one.
import syncless

syncless.install_greenlet()
