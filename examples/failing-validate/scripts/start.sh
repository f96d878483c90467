#!/bin/sh
echo "starting failing app"
