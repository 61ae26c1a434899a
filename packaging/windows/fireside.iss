; Inno Setup script: the Fireside installer for Windows x64 (Inno Setup 6).
; UNTESTED: written on Linux, never compiled. See packaging/README.md.
;
;   iscc /DAppVersion=0.1.0 packaging\windows\fireside.iss
;
; Installs dist\Fireside\ (built by fireside-windows.spec) per user by default, without admin rights
; (%LOCALAPPDATA%\Programs\Fireside); the user may choose an all-users install instead. Adds a Start
; menu entry (and optionally a desktop icon) and an uninstaller. The uninstaller removes the program
; only: models and conversations in %LOCALAPPDATA%\Fireside are the user's and stay.

#ifndef AppVersion
  #define AppVersion "0.1.0"
#endif

[Setup]
AppId={{6F3B8C9E-2D4A-4E1B-9C7F-5A8D0E2B4F61}
AppName=Fireside
AppVersion={#AppVersion}
AppPublisher=Fireside contributors
AppComments=Run large language models on your own computer
DefaultDirName={autopf}\Fireside
DefaultGroupName=Fireside
DisableProgramGroupPage=yes
PrivilegesRequired=lowest
PrivilegesRequiredOverridesAllowed=dialog
ArchitecturesAllowed=x64compatible
ArchitecturesInstallIn64BitMode=x64compatible
MinVersion=10.0
OutputDir=..\..\dist
OutputBaseFilename=fireside-{#AppVersion}-windows-x64-setup
SetupIconFile=fireside.ico
UninstallDisplayIcon={app}\Fireside.exe
Compression=lzma2/max
SolidCompression=yes
WizardStyle=modern
CloseApplications=yes

[Languages]
Name: "english"; MessagesFile: "compiler:Default.isl"

[Tasks]
Name: "desktopicon"; Description: "{cm:CreateDesktopIcon}"; GroupDescription: "{cm:AdditionalIcons}"; Flags: unchecked

[Files]
Source: "..\..\dist\Fireside\*"; DestDir: "{app}"; Flags: ignoreversion recursesubdirs createallsubdirs

[Icons]
Name: "{autoprograms}\Fireside"; Filename: "{app}\Fireside.exe"; Comment: "Run large language models on your own computer"
Name: "{autodesktop}\Fireside"; Filename: "{app}\Fireside.exe"; Tasks: desktopicon

[Run]
Filename: "{app}\Fireside.exe"; Description: "{cm:LaunchProgram,Fireside}"; Flags: nowait postinstall skipifsilent
