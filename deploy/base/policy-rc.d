#!/bin/sh
# Packages installed while an image is built must not start their daemons (invoke-rc.d asks this first).
exit 101
