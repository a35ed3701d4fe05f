# Builds the one-folder bundle dist\GhostFace\ on Windows with PyInstaller, from a fresh clone too.
#
#   powershell -ExecutionPolicy Bypass -File packaging\build.ps1
#   powershell -ExecutionPolicy Bypass -File packaging\build.ps1 -Archive   # also dist\GhostFace-<version>-windows-x64.zip
#
# Environment:
#   PYTHON            interpreter that creates .venv when it is missing (default: py -3.11, else python)
#   VENV              the virtual environment to build from (default .venv)
#   GHOSTFACE_SHARED  the shared data folder (default ..\shared); its models\ folder supplies the
#                     RetinaFace weights unless GHOSTFACE_MODEL_PATH already names a folder
#   GHOSTFACE_ALLOW_MISSING_MODELS=1  build even when the RetinaFace weights are not found
param([switch]$Archive)
$ErrorActionPreference = "Stop"
Set-Location (Split-Path -Parent $PSScriptRoot)
$Repo = (Get-Location).Path

function Say($msg) { Write-Host "[build] $msg" }
function Invoke-Checked {
    param([string]$Exe, [string[]]$Arguments)
    & $Exe @Arguments
    if ($LASTEXITCODE -ne 0) { throw "command failed ($LASTEXITCODE): $Exe $($Arguments -join ' ')" }
}

function Test-Python([string]$Code) {
    # A failing probe prints to stderr; under "Stop" Windows PowerShell would turn that into an exception.
    $ErrorActionPreference = "Continue"
    & $Py -c $Code 2>&1 | Out-Null
    return ($LASTEXITCODE -eq 0)
}

$Venv = if ($env:VENV) { $env:VENV } else { ".venv" }
$Py = Join-Path $Venv "Scripts\python.exe"
$Shared = if ($env:GHOSTFACE_SHARED) { $env:GHOSTFACE_SHARED } else { Join-Path $Repo "..\shared" }

if (-not (Test-Path $Py)) {
    Say "creating $Venv"
    if ($env:PYTHON) { Invoke-Checked $env:PYTHON @("-m", "venv", $Venv) }
    elseif (Get-Command py -ErrorAction SilentlyContinue) { Invoke-Checked "py" @("-3.11", "-m", "venv", $Venv) }
    else { Invoke-Checked "python" @("-m", "venv", $Venv) }
}

$Pyproject = Get-Content pyproject.toml -Raw
$TorchPin = [regex]::Match($Pyproject, '"(torch==[^"]+)"').Groups[1].Value
$PyInstallerPin = [regex]::Match($Pyproject, '"pyinstaller==([^"]+)"').Groups[1].Value

if (-not (Test-Python "import torch, cv2, PySide6")) {
    # torch first, alone: the Windows wheels on PyPI are CPU builds.
    Say "installing $TorchPin (CPU) and the app"
    Invoke-Checked $Py @("-m", "pip", "--disable-pip-version-check", "-q", "install", $TorchPin)
}
if (-not (Test-Python "from importlib.metadata import version; assert version('pyinstaller') == '$PyInstallerPin'; version('ghostface-desktop')")) {
    Say "installing the app with its 'package' extra (PyInstaller)"
    Invoke-Checked $Py @("-m", "pip", "--disable-pip-version-check", "-q", "install", "-e", ".[package]")
}
Invoke-Checked $Py @("-c", "import torch; assert not torch.version.cuda, 'a CUDA build of torch is installed'")

if (-not $env:GHOSTFACE_MODEL_PATH -and (Test-Path (Join-Path $Shared "models"))) {
    $env:GHOSTFACE_MODEL_PATH = (Resolve-Path (Join-Path $Shared "models")).Path
}
# A private home: the build never reads or writes the builder's own GhostFace settings or models.
$env:GHOSTFACE_HOME = Join-Path $Repo "build\home"

if (-not (Test-Path "core\weights\ghostfacenetv2.pt")) {
    Say "NOTE: core\weights\ghostfacenetv2.pt is missing; the bundle will only offer the SFace embedder"
}

Say "running PyInstaller (one folder)"
$Timer = [System.Diagnostics.Stopwatch]::StartNew()
Invoke-Checked $Py @("-m", "PyInstaller", "--noconfirm", "--log-level", "WARN",
    "--distpath", "dist", "--workpath", "build\pyinstaller", "packaging\ghostface.spec")
$Timer.Stop()

$Exe = "dist\GhostFace\GhostFace.exe"
if (-not (Test-Path $Exe)) { throw "$Exe was not produced" }
$SizeMiB = [math]::Round(((Get-ChildItem dist\GhostFace -Recurse -File | Measure-Object Length -Sum).Sum / 1MB))
Say ("built $Exe in {0:N0} s; bundle size $SizeMiB MiB" -f $Timer.Elapsed.TotalSeconds)

if ($Archive) {
    $Version = (& $Py -c "from importlib.metadata import version; print(version('ghostface-desktop'))").Trim()
    $Zip = "dist\GhostFace-$Version-windows-x64.zip"
    Say "packing $Zip"
    if (Test-Path $Zip) { Remove-Item $Zip }
    Compress-Archive -Path dist\GhostFace -DestinationPath $Zip
    Say ("archive $Zip ({0:N0} MiB)" -f ((Get-Item $Zip).Length / 1MB))
}
