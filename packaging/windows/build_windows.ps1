# Build Fireside for Windows x64 and its installer. UNTESTED (written on Linux): see packaging/README.md.
#
#   powershell -ExecutionPolicy Bypass -File packaging\windows\build_windows.ps1 [-FromWorktree]
#
# Needs: Python 3.11 (py launcher), Git, Visual Studio Build Tools with C++ (pip compiles
# llama-cpp-python; for CUDA set $env:CMAKE_ARGS="-DGGML_CUDA=on" first), Inno Setup 6 (iscc.exe).
# Like packaging/build.sh: builds what is committed (git archive HEAD) in a temporary folder unless
# -FromWorktree; a fresh venv with ".[package]"; PyInstaller with fireside-windows.spec; the bundled
# self-test (fireside-cli.exe) with no Python on PATH; then dist\fireside-<version>-windows-x64-setup.exe.
param([switch]$FromWorktree)
$ErrorActionPreference = "Stop"
$Repo = (Resolve-Path "$PSScriptRoot\..\..").Path
$Work = Join-Path ([IO.Path]::GetTempPath()) ("fireside-build-" + [guid]::NewGuid().ToString("N").Substring(0, 8))
$Src = Join-Path $Work "src"
New-Item -ItemType Directory -Force $Src | Out-Null
try {
    if ($FromWorktree) {
        Push-Location $Repo
        git ls-files --cached --others --exclude-standard | ForEach-Object {
            if (Test-Path $_) {
                $dest = Join-Path $Src $_
                New-Item -ItemType Directory -Force (Split-Path $dest) | Out-Null
                Copy-Item $_ $dest
            }
        }
        Pop-Location
    } else {
        git -C $Repo archive --format=zip -o "$Work\src.zip" HEAD
        Expand-Archive "$Work\src.zip" $Src
    }
    py -3.11 -m venv "$Work\venv"
    $Py = "$Work\venv\Scripts\python.exe"
    & $Py -m pip install --quiet --upgrade pip
    & $Py -m pip install --quiet "$Src[package]"
    if ($LASTEXITCODE -ne 0) { throw "pip install failed" }
    Push-Location $Work; & $Py -m app.core.models.starter; Pop-Location  # the starter model into the user cache
    Push-Location $Src
    & $Py -m PyInstaller --noconfirm --clean --distpath "$Src\dist" --workpath "$Src\build" packaging\windows\fireside-windows.spec
    if ($LASTEXITCODE -ne 0) { throw "PyInstaller failed" }
    Pop-Location

    # Checks from a copy outside the checkout, with a PATH that has no Python.
    $Run = Join-Path $Work "run"
    Copy-Item -Recurse "$Src\dist\Fireside" "$Run\Fireside"
    $saved = $env:PATH
    $env:PATH = "$env:SystemRoot\System32"
    $env:QT_QPA_PLATFORM = "offscreen"; $env:FIRESIDE_BUNDLE_CHECK = "1"
    & "$Run\Fireside\fireside-cli.exe"
    if ($LASTEXITCODE -ne 0) { throw "bundle check failed" }
    Remove-Item Env:FIRESIDE_BUNDLE_CHECK; Remove-Item Env:QT_QPA_PLATFORM
    & "$Run\Fireside\fireside-cli.exe" --selftest --json --data-dir "$Run\data"
    if ($LASTEXITCODE -ne 0) { throw "self-test failed" }
    $env:PATH = $saved
    "{0:N0} MB" -f ((Get-ChildItem -Recurse "$Src\dist\Fireside" | Measure-Object Length -Sum).Sum / 1MB)
    & $Py "$Src\tests\perf\bench_bundle_startup.py" "$Run\Fireside\fireside-cli.exe" --clean-env

    New-Item -ItemType Directory -Force "$Repo\dist" | Out-Null
    if (Test-Path "$Repo\dist\Fireside") { Remove-Item -Recurse -Force "$Repo\dist\Fireside" }
    Copy-Item -Recurse "$Src\dist\Fireside" "$Repo\dist\Fireside"
    $Version = (Select-String -Path "$Src\app\__init__.py" -Pattern '__version__ = "(.+)"').Matches[0].Groups[1].Value
    $Iscc = "${env:ProgramFiles(x86)}\Inno Setup 6\ISCC.exe"
    & $Iscc "/DAppVersion=$Version" "$Repo\packaging\windows\fireside.iss"
    if ($LASTEXITCODE -ne 0) { throw "Inno Setup failed" }
} finally {
    Remove-Item -Recurse -Force $Work -ErrorAction SilentlyContinue
}
