"""Container tasks: the runtime (podman or docker) found on this machine, images, and running a task in one.

:mod:`.runtime` finds and describes the runtime, :mod:`.images` makes images present (pulls with
registry credentials), :mod:`.launch` runs one task in a container, :mod:`.spec` holds the records.
"""
