"""Hardware abstraction: the few objects the core needs, one implementation per platform.

A HAL object has these attributes and methods (hal/rp2.py: real pins; hal/host.py: simulated):

- ``relays``: dict name -> Pin-like (``value(1)`` = load powered); always has ``"host"``
- ``i2c``: machine.I2C-like (``writeto``, ``readfrom``) with the SHT3x, or None
- ``door``, ``tamper``, ``presence``: Pin-like inputs, ``value()`` 1 = open/active/someone there
- ``fan``: PWM-like (``duty_u16``); ``beacon``: Pin-like output
- ``store``: ``load()`` -> dict or None, ``save(dict)`` (the boot record, in flash)
- ``reset_cause()`` -> "power_on" | "watchdog" | "soft" | "unknown"
- ``board_id()`` -> hex string; ``rand_seq()`` -> int 1..255 (initial link sequence number)
- ``start_wdt(timeout_ms)`` -> object with ``feed()``
- ``files``: the flash as seen by file transfer and the host watchdog's power-cycle history
  (``size``, ``open``, ``read``, ``write``, ``rename``, ``remove``, ``makedirs`` on relative
  paths; hal/fs.DirFs, or hal/host.MemoryFs)
- ``reset()``: restart the board (after the ``reset`` command's reply has gone out)
- rp2 only (used by main.py): ``service_jumper()``, ``service_feed(wdt, seconds)``
"""
