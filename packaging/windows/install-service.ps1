# Installs the forwarder as a Windows service with the service wrapper in
# Python's standard distribution replaced by the OS's own sc.exe: the service
# runs `forwarder.exe run` from the directory holding forwarder.yml.
# Run in an elevated PowerShell after `py -m pip install .`:
#   .\install-service.ps1 -ConfigDir "C:\ProgramData\forwarder"
param(
    [string]$ConfigDir = "C:\ProgramData\forwarder"
)
$ErrorActionPreference = "Stop"
$exe = (Get-Command forwarder.exe).Source
New-Item -ItemType Directory -Force -Path $ConfigDir, "$ConfigDir\data", "$ConfigDir\logs" | Out-Null
if (-not (Test-Path "$ConfigDir\forwarder.yml")) {
    Copy-Item "$PSScriptRoot\..\..\forwarder.yml" "$ConfigDir\forwarder.yml"
}
$binPath = "`"$exe`" run --path.home `"$ConfigDir`" --path.config `"$ConfigDir`" --path.data `"$ConfigDir\data`" --path.logs `"$ConfigDir\logs`""
sc.exe create forwarder binPath= $binPath start= delayed-auto DisplayName= "forwarder (security log forwarder)"
sc.exe failure forwarder reset= 86400 actions= restart/5000/restart/5000/restart/60000
Write-Host "Installed. Start it with: sc.exe start forwarder"
