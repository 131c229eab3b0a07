"""The supervised world (一企一档): administrative divisions (GB/T 2260), enterprises and their
major-hazard installations, chemical parks, sectors, and token scopes — with the one function
that decides what a scope may see (`scope.resolve`)."""
