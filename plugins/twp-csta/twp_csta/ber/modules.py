"""The ASN.1 definitions the BER codec compiles (asn1tools), written for this project.

Three modules, in our own words, each a concrete subset of a standard:

* ``TWP-CSTA-ECMA285``: the ECMA-285 (CSTA Phase III, ASN.1) types, operation arguments,
  results and events the drivers use.  Tags, types, optionality and operation codes follow
  the standard's modules (public copy: repository Wildboar-Software/asn1-typescript-libraries,
  commit 8edab49c986ccd1158e05ccc1aefedf32cfe4053, folder ``packages/csta/doc/``; one file
  per module, named in the comments below).  Component *names* follow ECMA-323 element names
  where the two differ (``monitorCrossRefID`` for ``crossRefIdentifier``), since names are
  not encoded and the neutral ``Message`` speaks ECMA-323.  Optional components that no
  driver reads are left out; a PBX may still send them: the decoder skips what follows the
  first component it does not know (all mandatory ones come first in every type used here).
* ``TWP-CSTA-ROSE``: the X.880 ROS PDUs (invoke, returnResult, returnError, reject) with
  concrete types, because X.880's information-object modules do not compile.
* ``TWP-CSTA-ACSE``: the X.227 ACSE APDUs (AARQ, AARE, RLRQ, RLRE, ABRT) with the CSTA
  user information of ECMA-285 (module ``acse_user_info_csta.asn1``).

Phase II (ECMA-218) differs in two places handled here: a device identifier is a bare
CHOICE (no SEQUENCE around it) and the call-control event tags are numbered without the
Phase III additions (bridged, digitsDialed, networkCapabilitiesChanged, offered).  Both are
inferred (ECMA-218's modules were not consulted; see docs/csta.md).
"""

from __future__ import annotations

# Phase III: DeviceID is a SEQUENCE around the identifier CHOICE (device-identifier.asn1).
_DEVICE_ID_PHASE3 = """
DeviceID ::= SEQUENCE {
    deviceIdentifier CHOICE {
        dialingNumber   [0] IMPLICIT NumberDigits,
        deviceNumber    [1] IMPLICIT INTEGER,
        implicitPublic  [2] IMPLICIT NumberDigits,
        explicitPublic  [3] TypeOfPublicNumber,
        implicitPrivate [4] IMPLICIT NumberDigits,
        explicitPrivate [5] TypeOfPrivateNumber,
        other           [6] IMPLICIT OCTET STRING },
    privateNumber [0] NumberDigits OPTIONAL,
    privateName   [1] IA5String OPTIONAL }
"""

# Phase II (inferred): the identifier CHOICE itself, without the SEQUENCE.
_DEVICE_ID_PHASE2 = """
DeviceID ::= CHOICE {
    dialingNumber   [0] IMPLICIT NumberDigits,
    deviceNumber    [1] IMPLICIT INTEGER,
    implicitPublic  [2] IMPLICIT NumberDigits,
    explicitPublic  [3] TypeOfPublicNumber,
    implicitPrivate [4] IMPLICIT NumberDigits,
    explicitPrivate [5] TypeOfPrivateNumber,
    other           [6] IMPLICIT OCTET STRING }
"""

# event-report-definitions.asn1: Phase III call-control event tags.
_CALL_CONTROL_EVENTS_PHASE3 = """
CallControlEvents ::= CHOICE {
    callCleared        [1] IMPLICIT CallClearedEvent,
    conferenced        [2] IMPLICIT ConferencedEvent,
    connectionCleared  [3] IMPLICIT ConnectionClearedEvent,
    delivered          [4] IMPLICIT DeliveredEvent,
    diverted           [6] IMPLICIT DivertedEvent,
    established        [7] IMPLICIT EstablishedEvent,
    failed             [8] IMPLICIT FailedEvent,
    held               [9] IMPLICIT HeldEvent,
    networkReached    [11] IMPLICIT NetworkReachedEvent,
    originated        [13] IMPLICIT OriginatedEvent,
    queued            [14] IMPLICIT QueuedEvent,
    retrieved         [15] IMPLICIT RetrievedEvent,
    serviceInitiated  [16] IMPLICIT ServiceInitiatedEvent,
    transferred       [17] IMPLICIT TransferredEvent }
"""

# Phase II (inferred): the same events numbered 0-13, the order of the Phase II
# EventReportServicesC2 bits in ECMA-285's ACSE user-information module.
_CALL_CONTROL_EVENTS_PHASE2 = """
CallControlEvents ::= CHOICE {
    callCleared        [0] IMPLICIT CallClearedEvent,
    conferenced        [1] IMPLICIT ConferencedEvent,
    connectionCleared  [2] IMPLICIT ConnectionClearedEvent,
    delivered          [3] IMPLICIT DeliveredEvent,
    diverted           [4] IMPLICIT DivertedEvent,
    established        [5] IMPLICIT EstablishedEvent,
    failed             [6] IMPLICIT FailedEvent,
    held               [7] IMPLICIT HeldEvent,
    networkReached     [8] IMPLICIT NetworkReachedEvent,
    originated         [9] IMPLICIT OriginatedEvent,
    queued            [10] IMPLICIT QueuedEvent,
    retrieved         [11] IMPLICIT RetrievedEvent,
    serviceInitiated  [12] IMPLICIT ServiceInitiatedEvent,
    transferred       [13] IMPLICIT TransferredEvent }
"""

_CSTA_TEMPLATE = """
TWP-CSTA-ECMA285 DEFINITIONS ::= BEGIN

-- device-identifier.asn1
NumberDigits ::= IA5String
TypeOfPublicNumber ::= CHOICE {
    unknown [0] IMPLICIT IA5String, international [1] IMPLICIT IA5String,
    national [2] IMPLICIT IA5String, networkspecific [3] IMPLICIT IA5String,
    subscriber [4] IMPLICIT IA5String, abbreviated [5] IMPLICIT IA5String }
TypeOfPrivateNumber ::= CHOICE {
    unknown [0] IMPLICIT IA5String, level3RegionalNumber [1] IMPLICIT IA5String,
    level2RegionalNumber [2] IMPLICIT IA5String, level1RegionalNumber [3] IMPLICIT IA5String,
    pTNSpecificNumber [4] IMPLICIT IA5String, localNumber [5] IMPLICIT IA5String,
    abbreviated [6] IMPLICIT IA5String }
@DEVICE_ID@
CallingDeviceID ::= [APPLICATION 1] CHOICE {
    deviceIdentifier DeviceID, notKnown [7] IMPLICIT NULL, restricted [8] IMPLICIT NULL }
CalledDeviceID ::= [APPLICATION 2] CHOICE {
    deviceIdentifier DeviceID, notKnown [7] IMPLICIT NULL, restricted [8] IMPLICIT NULL }
SubjectDeviceID ::= [APPLICATION 3] CHOICE {
    deviceIdentifier DeviceID, notKnown [7] IMPLICIT NULL, restricted [8] IMPLICIT NULL }
RedirectionDeviceID ::= [APPLICATION 4] CHOICE {
    numberdialed DeviceID, notKnown [7] IMPLICIT NULL, notRequired [8] IMPLICIT NULL,
    notSpecified [9] IMPLICIT NULL, restricted [10] IMPLICIT NULL }

-- call-connection-identifiers.asn1
CallID ::= OCTET STRING
LocalDeviceID ::= CHOICE { staticID DeviceID, dynamicID [3] IMPLICIT OCTET STRING }
ConnectionID ::= [APPLICATION 11] CHOICE {
    callID [0] IMPLICIT CallID,
    deviceID [1] LocalDeviceID,
    both SEQUENCE { callID [0] IMPLICIT CallID, deviceID [1] LocalDeviceID } }

-- connection-states.asn1
LocalConnectionState ::= [APPLICATION 14] IMPLICIT ENUMERATED {
    null (0), initiated (1), alerting (2), connected (3), hold (4), queued (5), fail (6) }
ConnectionList ::= SEQUENCE OF SEQUENCE {
    newConnection [0] ConnectionID OPTIONAL,
    oldConnection [1] ConnectionID OPTIONAL,
    endpoint [2] CHOICE { deviceID DeviceID, notKnown NULL, restricted [1] NULL } OPTIONAL,
    associatedNID [3] CHOICE { deviceID DeviceID, notKnown NULL } OPTIONAL }

-- event-cause.asn1
EventCause ::= ENUMERATED {
    aCDBusy (57), aCDForward (58), aCDSaturated (59), activation (88),
    activeParticipation (1), alertTimeExpired (60), alternate (2), autoWork (61),
    babble (89), badAttribute (90), badGrammar (91), badVoice (92), badUri (93),
    blocked (35), busy (3), busyOverflow (94), calendarOverflow (95), callBack (4),
    callCancelled (5), callForward (9), callForwardImmediate (6), callForwardBusy (7),
    callForwardNoAnswer (8), callInterception (116), callInterceptionBusy (117),
    callInterceptionForwarded (118), callInterceptionNoAnswer (119),
    callInterceptionResourcesNotAvailable (120), callNotAnswered (10), callPickup (11),
    campOn (12), campOnTrunks (62), capacityOverflow (96), characterCountReached (36),
    conference (63), consultation (37), destDetected (64), destNotObtainable (13),
    destOutOfOrder (65), distributed (38), distributionDelay (66), doNotDisturb (14),
    dTMFDigitDetected (39), duplicateDTMF (97), durationExceeded (40), earlyStop (98),
    emptyQueue (99), endOfMessageDetected (41), enteringDistribution (42),
    forcedPause (43), forcedTransition (67), incompatibleDestination (15),
    interDigitTimeout (100), intrude (68), invalidAccountCode (16),
    invalidConnection (101), invalidConnectionState (102), invalidNumberFormat (69),
    joinCall (70), keyOperation (17), keyOperationInUse (71), lawfulInterception (121),
    lockout (18), maintenance (19), makeCall (44), makeConnection (103),
    makePredictiveCall (72), maxTimeout (104), messageDurationExceeded (73),
    messageSizeExceeded (45), multipleAlerting (74), multipleQueuing (75),
    networkCongestion (20), networkDialling (76), networkNotObtainable (21),
    networkOutOfOrder (77), networkSignal (46), newCall (22), nextMessage (47),
    noAudioSaved (105), noAvailableAgents (23), noQueue (106), normal (78),
    normalClearing (48), noRule (107), noSpeechDetected (49),
    notAvaliableBearerService (79), notSupportedBearerService (80), numberChanged (50),
    numberUnallocated (81), outOfGrammar (108), overflow (26), override (24), park (25),
    pathReplacement (109), queueCleared (82), queueTimeOverflow (110), recall (27),
    recallBusy (111), recallForwarded (112), recallNoAnswer (113),
    recallResourcesNotAvailable (114), redirected (28), remainsInQueue (83),
    reorderTone (29), reserved (84), resourcesNotAvailable (30), selectedTrunkBusy (85),
    silentParticipation (31), singleStepConference (51), singleStepTransfer (52),
    speechDetected (53), suspend (86), switchingFunctionTerminated (54),
    terminationCharacterReceived (55), timeout (56), transfer (32), trunksBusy (33),
    unauthorisedBearerService (87), unknownOverflow (115) }

-- device-feature-types.asn1, status-reporting.asn1, switching-function-objects.asn1
CorrelatorData ::= OCTET STRING
UserData ::= [APPLICATION 29] OCTET STRING
AccountInfo ::= OCTET STRING
AuthCode ::= OCTET STRING
SystemStatus ::= ENUMERATED {
    disabled (4), partiallyDisabled (8), enabled (1), initializing (0), messagesLost (3),
    normal (2), overloadImminent (5), overloadReached (6), overloadRelieved (7) }
ForwardingType ::= ENUMERATED {
    forwardImmediate (0), forwardBusy (1), forwardNoAns (2), forwardDND (9),
    forwardBusyInt (3), forwardBusyExt (4), forwardNoAnsInt (5), forwardNoAnsExt (6),
    forwardImmInt (7), forwardImmExt (8), forwardDNDInt (10), forwardDNDExt (11) }
ForwardDefault ::= ENUMERATED { forwardingTypeAndForwardDN (0), forwardingType (1), forwardDN (2) }
ForwardList ::= SEQUENCE OF SEQUENCE {
    forwardingType ForwardingType OPTIONAL,
    forwardStatus BOOLEAN,
    forwardDN DeviceID OPTIONAL,
    forwardDefault ForwardDefault OPTIONAL,
    ringDuration [0] IMPLICIT INTEGER OPTIONAL,
    ringCount INTEGER (1..100) OPTIONAL }
CallOrigination ::= BIT STRING { internal (0), external (1) }
MonitorCrossRefID ::= [APPLICATION 21] IMPLICIT OCTET STRING
ServiceCrossRefID ::= OCTET STRING
CSTAObject ::= CHOICE { deviceObject DeviceID, callObject ConnectionID }
MonitorType ::= ENUMERATED { call (0), device (1) }
MonitorMediaClass ::= BIT STRING {
    voice (0), data (1), image (2), audio (4), other (3), notKnown (5), chat (6), email (7),
    message (8), im (9), sms (10), mms (11) }
MonitorFilter ::= SEQUENCE {
    callControl [0] IMPLICIT CallControlFilter OPTIONAL,
    callAssociated [6] IMPLICIT CallAssociatedFilter OPTIONAL,
    mediaAttachment [7] IMPLICIT MediaAttachmentFilter OPTIONAL,
    physicalDeviceFeature [8] IMPLICIT PhysicalDeviceFeatureFilter OPTIONAL,
    logicalDeviceFeature [9] IMPLICIT LogicalDeviceFeatureFilter OPTIONAL,
    maintenance [3] IMPLICIT MaintenanceFilter OPTIONAL,
    voiceUnit [5] IMPLICIT VoiceUnitFilter OPTIONAL,
    private [4] IMPLICIT PrivateFilter OPTIONAL }
-- The filter bit strings of acse_user_info_csta.asn1 (a set bit filters the event out).
CallControlFilter ::= BIT STRING {
    callCleared (0), conferenced (1), connectionCleared (2), delivered (3), diverted (4),
    established (5), failed (6), held (7), networkReached (8), originated (9), queued (10),
    retrieved (11), serviceInitiated (12), transferred (13), digitsDialed (14), bridged (15),
    networkCapabilitiesChanged (16), offered (17) }
CallAssociatedFilter ::= BIT STRING {
    callInformation (0), charging (1), dTMFDigitsDetected (2), telephonyTonesDetected (3),
    serviceCompletionFailure (4) }
MediaAttachmentFilter ::= BIT STRING { mediaAttached (0), mediaDetached (1) }
PhysicalDeviceFeatureFilter ::= BIT STRING {
    buttonInformation (0), buttonPress (1), displayUpdated (2), hookswitch (3), lampMode (4),
    messageWaiting (5), microphoneGain (6), microphoneMute (7), ringerStatus (8),
    speakerMute (9), speakerVolume (10) }
LogicalDeviceFeatureFilter ::= BIT STRING {
    agentBusy (0), agentLoggedOn (1), agentLoggedOff (2), agentNotReady (3), agentReady (4),
    agentWorkingAfterCall (5), autoAnswer (6), autoWorkMode (7), callBack (8),
    callBackMessage (9), callerIDStatus (10), doNotDisturb (11), forwarding (12),
    routeingMode (13), presenceState (14) }
MaintenanceFilter ::= BIT STRING {
    backInService (0), outOfService (1), deviceCapabilityChanged (2), partiallyInService (3) }
VoiceUnitFilter ::= BIT STRING {
    stop (0), play (1), suspendPlay (2), record (3), suspendRecord (4), review (5),
    voiceAttributesChange (6), bookmarkReached (7), completed (8), dtmfDetected (9),
    emptied (10), interruptionDetected (11), notRecognized (12), recognized (13),
    started (14), silenceTimeoutExpired (15), speechDetected (16), voiceErrorOccured (17) }
PrivateFilter ::= BIT STRING { privateEvent (0) }
CompoundCallState ::= SEQUENCE OF LocalConnectionState
SimpleCallState ::= ENUMERATED {
    callNull (0), callPending (1), callOriginated (3), callDelivered (35),
    callDeliveredHeld (36), callReceived (50), callEstablished (51), callEstablishedHeld (52),
    callReceivedOnHold (66), callEstablishedOnHold (67), callQueued (83),
    callQueuedHeld (84), callFailed (99), callFailedHeld (100), callBlocked (96) }
CallState ::= CHOICE {
    compoundCallState [0] IMPLICIT CompoundCallState,
    simpleCallState [1] IMPLICIT SimpleCallState,
    unknown [2] IMPLICIT NULL }
SnapshotDeviceData ::= [APPLICATION 22] IMPLICIT SEQUENCE OF SEQUENCE {
    connectionIdentifier ConnectionID,
    endpointDevice [3] IMPLICIT SubjectDeviceID OPTIONAL,
    localCallState CallState }
SnapshotCallData ::= [APPLICATION 23] IMPLICIT SEQUENCE OF SEQUENCE {
    deviceOnCall SubjectDeviceID,
    callIdentifier ConnectionID OPTIONAL,
    localConnectionState LocalConnectionState OPTIONAL }

-- The empty result of most services: CHOICE { extensions CSTACommonArguments, noData NULL }.
-- CSTACommonArguments ([APPLICATION 30]) is kept as an opaque value.
NoDataResult ::= CHOICE { extensions [APPLICATION 30] IMPLICIT SEQUENCE { ... }, noData NULL }

-- call-control.asn1 (AutoOriginate)
AutoOriginate ::= ENUMERATED { prompt (0), doNotPrompt (1) }
ConsultOptions ::= ENUMERATED { unrestricted (0), consultOnly (1), transferOnly (2), conferenceOnly (3) }
DigitMode ::= ENUMERATED { rotaryPulse (0), dTMF (1) }

-- Service arguments and results, one pair per service module (CODE in brackets)
-- alternate-call.asn1 (1)
AlternateCallArgument ::= SEQUENCE {
    heldCall ConnectionID, activeCall ConnectionID, connectionReservation BOOLEAN OPTIONAL }
-- answer-call.asn1 (2)
AnswerCallArgument ::= SEQUENCE {
    callToBeAnswered ConnectionID, correlatorData CorrelatorData OPTIONAL, userData UserData OPTIONAL }
-- clear-call.asn1 (4)
ClearCallArgument ::= SEQUENCE {
    callToBeCleared ConnectionID, userData UserData OPTIONAL, reason EventCause OPTIONAL }
-- clear-connection.asn1 (5)
ClearConnectionArgument ::= SEQUENCE {
    connectionToBeCleared ConnectionID, correlatorData CorrelatorData OPTIONAL,
    userData UserData OPTIONAL, reason EventCause OPTIONAL }
-- conference-call.asn1 (6)
ConferenceCallArgument ::= SEQUENCE { heldCall ConnectionID, activeCall ConnectionID }
ConferenceCallResult ::= SEQUENCE {
    conferenceCall ConnectionID, connections [0] IMPLICIT ConnectionList OPTIONAL }
-- consultation-call.asn1 (7)
ConsultationCallArgument ::= SEQUENCE {
    existingCall [0] IMPLICIT ConnectionID,
    consultedDevice [1] DeviceID,
    connectionReservation [2] IMPLICIT BOOLEAN OPTIONAL,
    accountCode [3] IMPLICIT AccountInfo OPTIONAL,
    authCode [4] IMPLICIT AuthCode OPTIONAL,
    correlatorData [5] IMPLICIT CorrelatorData OPTIONAL }
ConsultationCallResult ::= SEQUENCE { initiatedCall ConnectionID }
-- hold-call.asn1 (9)
HoldCallArgument ::= SEQUENCE { callToBeHeld ConnectionID, connectionReservation BOOLEAN OPTIONAL }
-- make-call.asn1 (10)
MakeCallArgument ::= SEQUENCE {
    callingDevice DeviceID,
    calledDirectoryNumber DeviceID,
    accountCode [0] IMPLICIT AccountInfo OPTIONAL,
    authCode [1] IMPLICIT AuthCode OPTIONAL,
    autoOriginate [3] IMPLICIT AutoOriginate OPTIONAL,
    correlatorData [2] IMPLICIT CorrelatorData OPTIONAL,
    userData UserData OPTIONAL }
MakeCallResult ::= SEQUENCE { callingDevice ConnectionID }
-- reconnect-call.asn1 (13)
ReconnectCallArgument ::= SEQUENCE { activeCall ConnectionID, heldCall ConnectionID }
-- retrieve-call.asn1 (14)
RetrieveCallArgument ::= SEQUENCE { callToBeRetrieved ConnectionID }
-- transfer-call.asn1 (16)
TransferCallArgument ::= SEQUENCE { heldCall ConnectionID, activeCall ConnectionID }
TransferCallResult ::= SEQUENCE {
    transferredCall ConnectionID, connections [0] IMPLICIT ConnectionList OPTIONAL }
-- single-step-transfer.asn1 (50)
SingleStepTransferCallArgument ::= SEQUENCE {
    activeCall ConnectionID,
    transferredTo DeviceID,
    accountCode [0] IMPLICIT AccountInfo OPTIONAL,
    authCode [1] IMPLICIT AuthCode OPTIONAL,
    correlatorData [2] IMPLICIT CorrelatorData OPTIONAL,
    userData UserData OPTIONAL }
SingleStepTransferCallResult ::= SEQUENCE {
    transferredCall ConnectionID, connections [0] IMPLICIT ConnectionList OPTIONAL }
-- monitor-start.asn1 (71)
MonitorStartArgument ::= SEQUENCE {
    monitorObject CSTAObject,
    requestedMonitorFilter [0] IMPLICIT MonitorFilter OPTIONAL,
    monitorType MonitorType OPTIONAL,
    requestedMonitorMediaClass [1] IMPLICIT MonitorMediaClass OPTIONAL }
MonitorStartResult ::= SEQUENCE {
    monitorCrossRefID MonitorCrossRefID,
    actualMonitorFilter [0] IMPLICIT MonitorFilter OPTIONAL,
    actualMonitorMediaClass [1] IMPLICIT MonitorMediaClass OPTIONAL,
    monitorExistingCalls BOOLEAN OPTIONAL }
-- monitor-stop.asn1 (73)
MonitorStopArgument ::= SEQUENCE { monitorCrossRefID MonitorCrossRefID }
-- snapshot-device.asn1 (74)
SnapshotDeviceArgument ::= SEQUENCE { snapshotObject DeviceID }
SnapshotDeviceResult ::= SEQUENCE {
    crossRefIDorSnapshotData CHOICE {
        serviceCrossRefID ServiceCrossRefID, snapshotData SnapshotDeviceData } }
-- snapshot-call.asn1 (75)
SnapshotCallArgument ::= SEQUENCE { snapshotObject ConnectionID }
SnapshotCallResult ::= SEQUENCE {
    crossRefIDorSnapshotData CHOICE {
        serviceCrossRefID [0] IMPLICIT ServiceCrossRefID, snapshotData SnapshotCallData } }
-- system-status.asn1 (211; 52 in Phase II)
SystemStatusArgument ::= SEQUENCE {
    sysStatRegisterID OCTET STRING OPTIONAL, systemStatus SystemStatus }
-- deflect-call.asn1 (218)
DeflectCallArgument ::= SEQUENCE {
    callToBeDiverted ConnectionID, newDestination DeviceID,
    addNewDestinationsList SEQUENCE OF DeviceID OPTIONAL,
    correlatorData CorrelatorData OPTIONAL, userData UserData OPTIONAL }
-- generate-digits.asn1 (232)
GenerateDigitsArgument ::= SEQUENCE {
    connectionToSendDigits ConnectionID,
    digitMode DigitMode OPTIONAL,
    charactersToSend IA5String,
    toneDuration [0] IMPLICIT INTEGER OPTIONAL,
    pulseRate [1] IMPLICIT INTEGER OPTIONAL,
    pauseDuration [2] IMPLICIT INTEGER OPTIONAL }
-- get-do-not-disturb.asn1 (308)
GetDoNotDisturbArgument ::= SEQUENCE { device DeviceID }
GetDoNotDisturbResult ::= SEQUENCE {
    doNotDisturbOn BOOLEAN, callOrigination CallOrigination OPTIONAL,
    callingDeviceList SEQUENCE OF DeviceID OPTIONAL }
-- get-forwarding.asn1 (309)
GetForwardingArgument ::= SEQUENCE { device DeviceID }
GetForwardingResult ::= SEQUENCE { forwardingList ForwardList }
-- set-do-not-disturb.asn1 (316)
SetDoNotDisturbArgument ::= SEQUENCE {
    device DeviceID, doNotDisturbOn BOOLEAN, callOrigination CallOrigination OPTIONAL,
    callingDeviceList SEQUENCE OF DeviceID OPTIONAL }
-- set-forwarding.asn1 (317)
SetForwardingArgument ::= SEQUENCE {
    device DeviceID,
    forwardingType ForwardingType OPTIONAL,
    activateForward BOOLEAN,
    forwardDN DeviceID OPTIONAL,
    ringCount INTEGER (1..100) OPTIONAL,
    ringDuration [3] IMPLICIT INTEGER OPTIONAL }

-- Events (one module each; the leading components, up to and including cause)
CallClearedEvent ::= SEQUENCE {
    clearedCall ConnectionID, correlatorData [1] IMPLICIT CorrelatorData OPTIONAL,
    userData UserData OPTIONAL, cause EventCause }
ConferencedEvent ::= SEQUENCE {
    primaryOldCall ConnectionID, secondaryOldCall ConnectionID OPTIONAL,
    conferencingDevice SubjectDeviceID, addedParty SubjectDeviceID,
    conferenceConnections ConnectionList,
    localConnectionInfo LocalConnectionState OPTIONAL,
    correlatorData [1] IMPLICIT CorrelatorData OPTIONAL, userData UserData OPTIONAL,
    cause EventCause }
ConnectionClearedEvent ::= SEQUENCE {
    droppedConnection ConnectionID, releasingDevice SubjectDeviceID,
    localConnectionInfo LocalConnectionState OPTIONAL,
    correlatorData [0] IMPLICIT CorrelatorData OPTIONAL, userData UserData OPTIONAL,
    cause EventCause }
DeliveredEvent ::= SEQUENCE {
    connection ConnectionID, alertingDevice SubjectDeviceID,
    callingDevice CallingDeviceID, calledDevice CalledDeviceID,
    lastRedirectionDevice RedirectionDeviceID,
    originatingNIDConnection ConnectionID OPTIONAL,
    localConnectionInfo LocalConnectionState OPTIONAL,
    correlatorData [0] IMPLICIT CorrelatorData OPTIONAL, userData UserData OPTIONAL,
    cause EventCause }
DivertedEvent ::= SEQUENCE {
    connection ConnectionID, divertingDevice SubjectDeviceID, newDestination SubjectDeviceID,
    callingDevice CallingDeviceID OPTIONAL, calledDevice CalledDeviceID OPTIONAL,
    lastRedirectionDevice RedirectionDeviceID,
    localConnectionInfo LocalConnectionState OPTIONAL,
    correlatorData [0] IMPLICIT CorrelatorData OPTIONAL, userData UserData OPTIONAL,
    cause EventCause }
EstablishedEvent ::= SEQUENCE {
    establishedConnection ConnectionID, answeringDevice SubjectDeviceID,
    callingDevice CallingDeviceID, calledDevice CalledDeviceID,
    lastRedirectionDevice RedirectionDeviceID,
    originatingNIDConnection ConnectionID OPTIONAL,
    localConnectionInfo LocalConnectionState OPTIONAL,
    correlatorData [1] IMPLICIT CorrelatorData OPTIONAL, userData UserData OPTIONAL,
    cause EventCause }
FailedEvent ::= SEQUENCE {
    failedConnection ConnectionID, failingDevice SubjectDeviceID,
    callingDevice CallingDeviceID, calledDevice CalledDeviceID,
    lastRedirectionDevice RedirectionDeviceID,
    originatingNIDConnection ConnectionID OPTIONAL,
    localConnectionInfo LocalConnectionState OPTIONAL,
    correlatorData [0] IMPLICIT CorrelatorData OPTIONAL, userData UserData OPTIONAL,
    cause EventCause }
HeldEvent ::= SEQUENCE {
    heldConnection ConnectionID, holdingDevice SubjectDeviceID,
    localConnectionInfo LocalConnectionState OPTIONAL,
    correlatorData [0] IMPLICIT CorrelatorData OPTIONAL, cause EventCause }
NetworkReachedEvent ::= SEQUENCE {
    outboundConnection ConnectionID, networkInterfaceUsed SubjectDeviceID,
    callingDevice CallingDeviceID, calledDevice CalledDeviceID,
    lastRedirectionDevice RedirectionDeviceID,
    originatingNIDConnection ConnectionID OPTIONAL,
    localConnectionInfo LocalConnectionState OPTIONAL,
    correlatorData [0] IMPLICIT CorrelatorData OPTIONAL, userData UserData OPTIONAL,
    cause EventCause }
OriginatedEvent ::= SEQUENCE {
    originatedConnection ConnectionID, callingDevice SubjectDeviceID,
    calledDevice CalledDeviceID, originatingDevice DeviceID OPTIONAL,
    localConnectionInfo LocalConnectionState OPTIONAL,
    correlatorData [2] IMPLICIT CorrelatorData OPTIONAL, cause EventCause }
QueuedEvent ::= SEQUENCE {
    queuedConnection ConnectionID, queue SubjectDeviceID,
    callingDevice CallingDeviceID, calledDevice CalledDeviceID,
    lastRedirectionDevice RedirectionDeviceID,
    numberQueued [0] IMPLICIT INTEGER OPTIONAL, callsInFront [1] IMPLICIT INTEGER OPTIONAL,
    localConnectionInfo LocalConnectionState OPTIONAL,
    correlatorData [2] IMPLICIT CorrelatorData OPTIONAL, userData UserData OPTIONAL,
    cause EventCause }
RetrievedEvent ::= SEQUENCE {
    retrievedConnection ConnectionID, retrievingDevice SubjectDeviceID,
    localConnectionInfo LocalConnectionState OPTIONAL,
    correlatorData [0] IMPLICIT CorrelatorData OPTIONAL, cause EventCause }
ServiceInitiatedEvent ::= SEQUENCE {
    initiatedConnection ConnectionID, initiatingDevice SubjectDeviceID,
    calledDevice CalledDeviceID OPTIONAL,
    localConnectionInfo LocalConnectionState OPTIONAL,
    correlatorData [0] IMPLICIT CorrelatorData OPTIONAL, cause EventCause }
TransferredEvent ::= SEQUENCE {
    primaryOldCall ConnectionID, secondaryOldCall [0] IMPLICIT ConnectionID OPTIONAL,
    transferringDevice SubjectDeviceID, transferredToDevice SubjectDeviceID,
    transferredConnections [1] IMPLICIT ConnectionList,
    localConnectionInfo LocalConnectionState OPTIONAL,
    correlatorData [2] IMPLICIT CorrelatorData OPTIONAL, userData UserData OPTIONAL,
    chargingInfo [3] IMPLICIT OCTET STRING OPTIONAL,
    cause EventCause }
DoNotDisturbEvent ::= SEQUENCE {
    device SubjectDeviceID, doNotDisturbOn BOOLEAN,
    callOrigination CallOrigination OPTIONAL,
    callingDeviceList SEQUENCE OF DeviceID OPTIONAL }
ForwardingEvent ::= SEQUENCE {
    device SubjectDeviceID, forwardingType ForwardingType OPTIONAL,
    forwardStatus BOOLEAN, forwardTo DeviceID OPTIONAL,
    forwardDefault ForwardDefault OPTIONAL, ringCount INTEGER (1..100) OPTIONAL,
    ringDuration [4] IMPLICIT INTEGER OPTIONAL }

-- event-report-definitions.asn1 (cSTAEventReport, CODE 21)
CSTAEventReportArgument ::= SEQUENCE {
    monitorCrossRefID MonitorCrossRefID,
    eventSpecificInfo EventSpecificInfo }
EventSpecificInfo ::= CHOICE {
    callControlEvents [0] CallControlEvents,
    logicalDeviceFeatureEvents [4] LogicalDeviceFeatureEvents }
@CALL_CONTROL_EVENTS@
LogicalDeviceFeatureEvents ::= CHOICE {
    doNotDisturb [11] IMPLICIT DoNotDisturbEvent,
    forwarding [12] IMPLICIT ForwardingEvent }

-- error-definition.asn1 (universalFailure, error CODE 1)
UniversalFailure ::= CHOICE {
    operation [0] OperationErrors,
    security [1] SecurityErrors,
    stateIncompatibility [2] StateIncompatibilityErrors,
    systemResourceAvailability [3] SystemResourceAvailabilityErrors,
    subscribedResourceAvailability [4] SubscribedResourceAvailabilityErrors,
    performanceManagement [5] PerformanceManagementErrors,
    privateData [6] PrivateDataInfoErrors,
    unspecified [7] NULL }
OperationErrors ::= ENUMERATED {
    generic (1), atLeastOneConditionalParameterNotProvided (29), featureAlreadySet (30),
    invalidMsgID (25), invalidParameterValue (31), invalidAccountCode (21),
    invalidAgentGroup (32), invalidAgentIdentifier (33), invalidAgentPassword (34),
    invalidAgentState (35), invalidAlertTime (36), invalidAllocationState (16),
    invalidAuthCode (22), invalidAutoAnswer (37), invalidBitRate (38),
    invalidButtonIdentifier (39), invalidCallType (42), invalidConnectionRate (43),
    invalidConsultPurpose (44), invalidCorrelatorData (20), invalidCrossRefID (17),
    invalidDelayTolerance (45), invalidDestination (14), invalidDestinationDetect (46),
    invalidDoNotDisturb (47), invalidEscapeCrossRefID (48), invalidFeature (15),
    invalidFile (28), invalidFlowDirection (49), invalidForwardingDestination (7),
    invalidForwardingFlag (51), invalidForwardingType (52), invalidHookswitchType (53),
    invalidHookswitchComponent (54), invalidLampMode (55), invalidLampID (56),
    invalidMessageWaitingSetting (57), invalidMicrophoneGain (58),
    invalidMicrophoneMute (59), invalidMonitorCrossRefID (60), invalidMonitorFilter (61),
    invalidMonitorObject (62), invalidMonitorType (63), invalidNumberOFChannels (64),
    invalidParticipationType (65), invalidRemainRetry (66), invalidRingCount (67),
    invalidRingPattern (68), invalidRingVolume (69), invalidRouteingAlgorithm (70),
    invalidRouteingCrossRefID (71), invalidRouteRegistrationCrossRefID (72),
    invalidSpeakerVolume (73), invalidSpeakerMute (74),
    invalidSwitchingSubdomainCharsType (75), invalidObjectType (18),
    invalidActiveCallObject (76), invalidCalledDeviceObjectType (77),
    invalidCallingDeviceObjectType (78), invalidCallToBePickedUpObjectType (79),
    invalidCallToDivertObjectType (80), invalidCallToParkObjectType (81),
    invalidDestinationDeviceObject (195), invalidHeldCallObject (82),
    invalidMonitorObjectType (83), invalidParkToObjectType (84), messageIDRequired (26),
    notDifferentDevices (85), notSameDevice (86), objectNotKnown (4), invalidCallID (11),
    invalidActiveCallID (87), invalidHeldCallID (88), invalidConnectionID (13),
    invalidActiveConnectionID (89), invalidHeldConnectionID (90), invalidDeviceID (12),
    invalidActiveDeviceID (91), invalidCalledDeviceID (6), invalidCallingDeviceID (5),
    invalidCallToParkDeviceID (92), invalidDestinationDeviceID (93),
    invalidDivertingDeviceID (94), invalidHeldDeviceID (95), invalidParkToDeviceID (96),
    invalidPickUpDeviceID (97), parameterNotSupported (98), accountCodeNotSupported (99),
    agentGroupNotSupported (100), agentPasswordNotSupported (101),
    agentStateNotSupported (102), alertTimeNotSupported (103),
    allocationNotSupported (104), authorisationCodeNotSupported (105),
    autoAnswerNotSupported (106), bitRateNotSupported (107), buttonNotSupported (108),
    callTypeNotSupported (109), charactersToSendNotSupported (110),
    connectionRateNotSupported (111), connectionReservationNotSupported (112),
    consultPurposeNotSupported (113), correlatorDataNotSupported (114),
    delayToleranceNotSupported (115), destinationDetectNotSupported (116),
    digitModeNotSupported (117), errorValueNotSupported (118),
    flowDirectionNotSupported (119), forwardingDestinationNotSupported (120),
    lampNotSupported (121), monitorTypeNotSupported (122),
    numberOfChannelsNotSupported (123), parameterTypeNotSupported (124),
    priorityNotSupported (125), privateDataNotSupported (126),
    pulseDurationNotSupported (127), pulseRateNotSupported (128),
    remainRetryNotSupported (129), ringCountNotSupported (130),
    routeUsedNotSupported (131), securityNotSupported (132),
    swSubdomainCCIETypeNotSupported (133), toneDurationNotSupported (134),
    sysStatRegIDNotSupported (135), userDataNotSupported (136),
    privilegeViolationSpecifiedDevice (8), privilegeViolationActiveDevice (137),
    privilegeViolationCalledDevice (9), privilegeViolationCallingDevice (10),
    privilegeViolationCallToParkDevice (138), privilegeViolationDestinationDevice (139),
    privilegeViolationOnDivertingDevice (140), privilegeViolationHeldDevice (141),
    privilegeViolationOnParkToDevice (142), privilegeViolationPickUpDevice (143),
    routeingTimerExpired (144), requestIncompatibleWithObject (2),
    requestIncompatibleWithConnection (145), requestIncompatibleWithActiveConnection (146),
    requestIncompatibleWithHeldConnection (147), requestIncompatibleWithDevice (148),
    requestIncompatibleWithCalledDevice (24), requestIncompatibleWithCallingDevice (23),
    requestIncompatibleWithSubjectDevice (149), requestIncompatibleWithActiveDevice (150),
    requestIncompatibleWithCallToParkDevice (151),
    requestIncompatibleWithDestinationDevice (152),
    requestIncompatibleWithDivertingDevice (153), requestIncompatibleWithHeldDevice (154),
    requestIncompatibleWithMedia (27), requestIncompatibleWithParkToDevice (155),
    requestIncompatibleWithPickupDevice (156), serviceNotSupported (50),
    securityViolation (19), valueOutOfRange (3), agentStateOutOfRange (157),
    alertTimeOutOfRange (158), allocationOutOfRange (159), autoAnswerOutOfRange (160),
    bitRateOutOfRange (161), callTypeOutOfRange (162), connectionRateOutOfRange (163),
    connectionReservoationOutOfRange (164), consultPurposeOutOfRange (165),
    correlatorDataOutOfRange (166), delayToleranceOutOfRange (167),
    destinationDetectOutOfRange (168), digitModeOutOfRange (169),
    doNotDisturbOutOfRange (170), flowDirectionOutOfRange (171),
    forwardingFlagOutOfRange (172), forwardingTypeOutOfRange (173),
    hookswitchComponentOutOfRange (174), hookswitchTypeOutOfRange (175),
    lampModeOutOfRange (176), messageWaitingSettingOutOfRange (177),
    micGainOutOfRange (178), micMuteOutOfRange (179), monitorTypeOutOfRange (180),
    numberOfChannelsOutOfRange (181), participationTypeOutOfRange (182),
    pulseDurationOutOfRange (183), pulseRateOutOfRange (184), ringCountOutOfRange (185),
    ringPatternOutOfRange (186), ringVolumnOutOfRange (187),
    routeingAlgorithmOutOfRange (188), speakerMuteOutOfRange (189),
    speakerVolumeOutOfRange (190), switchingCcittTypeOutOfRange (191),
    systemStatusOutOfRange (192), toneCharacterOutOfRange (193),
    toneDurationOutOfRange (194) }
SecurityErrors ::= ENUMERATED {
    generic (0), sequenceNumberViolated (1), timeStampViolated (2), securityInfoViolated (4) }
StateIncompatibilityErrors ::= ENUMERATED {
    generic (1), invalidObjectState (2), invalidDeviceState (15), connectedCallExists (16),
    invalidActiveDeviceState (17), invalidCalledDeviceState (18),
    invalidCallingDeviceState (19), invalidCallToParkDeviceState (20),
    invalidDestinationDeviceState (21), invalidDivertingDeviceState (22),
    invalidHeldDeviceState (23), invalidParkToDeviceState (24), invalidConnectionState (25),
    invalidActiveConnectionState (26), invalidConnectionIDForActiveCall (3),
    invalidHeldConnectionState (27), noActiveCall (4), noCallToAnswer (8), noCallToClear (6),
    noCallToComplete (9), noConnectionToClear (7), noHeldCall (5), incorrectMsgState (28),
    beginningOfMsg (13), endOfMsg (12), msgSuspended (14), notAbleToPlay (10),
    notAbleToResume (11) }
SystemResourceAvailabilityErrors ::= ENUMERATED {
    generic (1), resourceBusy (2), internalResourceBusy (3), classifierBusy (9),
    noMediaChannelsAvailable (10), channelsInUseForBridgedDevices (11),
    channelsInUseForData (12), toneDetectorBusy (13), toneGeneratorBusy (14),
    networkBusy (5), resourceOutOfService (4), deviceOutOfService (15),
    activeDeviceOutOfService (16), calledDeviceOutOfService (17),
    callingDeviceOutOfService (18), callToParkDeviceOutOfService (19),
    destinationDeviceOutOfService (20), divertingDeviceOutOfService (21),
    heldDeviceOutOfService (22), parkToDeviceOutOfService (23),
    pickupDeviceOutOfService (24), networkOutOfService (6), otherResourceOutOfService (25),
    resourceLimitExceeded (26), overallMonitorLimitExceeded (7),
    conferenceMemberLimitExceeded (8), registrationLimitExceeded (27),
    conferenceResourceCannotBeSatisfied (28), maxDevicesExceeded (29),
    startTimeOutOfRange (30), durationExceeded (31) }
SubscribedResourceAvailabilityErrors ::= ENUMERATED {
    generic (1), objectMonitorLimitExceeded (2), trunkLimitExceeded (3),
    outstandingReqLimitExceeded (4), objectRegistrationLimitExceeded (5) }
PerformanceManagementErrors ::= ENUMERATED { generic (1), performanceLimitExceeded (2) }
PrivateDataInfoErrors ::= ENUMERATED { cSTAPrivateDataInfoError (1) }

END
"""

ROSE_MODULE = """
TWP-CSTA-ROSE DEFINITIONS ::= BEGIN
-- X.880 ROS PDUs (module Remote-Operations-Generic-ROS-PDUs, IMPLICIT TAGS there; the
-- IMPLICIT keywords are written out here).  Argument, result and parameter are kept as
-- the raw encoding of the operation's own type (ANY), decoded in a second step.
RosePdu ::= CHOICE {
    invoke       [1] IMPLICIT RoseInvoke,
    returnResult [2] IMPLICIT RoseReturnResult,
    returnError  [3] IMPLICIT RoseReturnError,
    reject       [4] IMPLICIT RoseReject }
RoseCode ::= CHOICE { local INTEGER, global OBJECT IDENTIFIER }
RoseInvoke ::= SEQUENCE {
    invokeId INTEGER,
    linkedId [0] IMPLICIT INTEGER OPTIONAL,
    opcode RoseCode,
    argument ANY OPTIONAL }
RoseReturnResult ::= SEQUENCE {
    invokeId INTEGER,
    result SEQUENCE { opcode RoseCode, result ANY } OPTIONAL }
RoseReturnError ::= SEQUENCE {
    invokeId INTEGER,
    errcode RoseCode,
    parameter ANY OPTIONAL }
RoseReject ::= SEQUENCE {
    invokeId CHOICE { present INTEGER, absent NULL },
    problem CHOICE {
        general      [0] IMPLICIT GeneralProblem,
        invoke       [1] IMPLICIT InvokeProblem,
        returnResult [2] IMPLICIT ReturnResultProblem,
        returnError  [3] IMPLICIT ReturnErrorProblem } }
GeneralProblem ::= ENUMERATED { unrecognizedPDU (0), mistypedPDU (1), badlyStructuredPDU (2) }
InvokeProblem ::= ENUMERATED {
    duplicateInvocation (0), unrecognizedOperation (1), mistypedArgument (2),
    resourceLimitation (3), releaseInProgress (4), unrecognizedLinkedId (5),
    linkedResponseUnexpected (6), unexpectedLinkedOperation (7) }
ReturnResultProblem ::= ENUMERATED {
    unrecognizedInvocation (0), resultResponseUnexpected (1), mistypedResult (2) }
ReturnErrorProblem ::= ENUMERATED {
    unrecognizedInvocation (0), errorResponseUnexpected (1), unrecognizedError (2),
    unexpectedError (3), mistypedParameter (4) }
END
"""

ACSE_MODULE = """
TWP-CSTA-ACSE DEFINITIONS ::= BEGIN
-- X.227 ACSE APDUs (module ACSE-1), the components CSTA links use.
AcseApdu ::= CHOICE {
    aarq AARQ-apdu, aare AARE-apdu, rlrq RLRQ-apdu, rlre RLRE-apdu, abrt ABRT-apdu }
AARQ-apdu ::= [APPLICATION 0] IMPLICIT SEQUENCE {
    protocol-version [0] IMPLICIT BIT STRING { version1 (0) } OPTIONAL,
    application-context-name [1] OBJECT IDENTIFIER,
    called-AP-title [2] AP-title OPTIONAL,
    calling-AP-title [6] AP-title OPTIONAL,
    sender-acse-requirements [10] IMPLICIT BIT STRING { authentication (0) } OPTIONAL,
    mechanism-name [11] IMPLICIT OBJECT IDENTIFIER OPTIONAL,
    calling-authentication-value [12] Authentication-value OPTIONAL,
    implementation-information [29] IMPLICIT GraphicString OPTIONAL,
    user-information [30] IMPLICIT SEQUENCE OF CstaExternal OPTIONAL }
AARE-apdu ::= [APPLICATION 1] IMPLICIT SEQUENCE {
    protocol-version [0] IMPLICIT BIT STRING { version1 (0) } OPTIONAL,
    application-context-name [1] OBJECT IDENTIFIER,
    result [2] INTEGER { accepted (0), rejected-permanent (1), rejected-transient (2) },
    result-source-diagnostic [3] CHOICE {
        acse-service-user [1] INTEGER {
            null (0), no-reason-given (1), application-context-name-not-supported (2),
            calling-AP-title-not-recognized (3), calling-AP-invocation-identifier-not-recognized (4),
            calling-AE-qualifier-not-recognized (5), calling-AE-invocation-identifier-not-recognized (6),
            called-AP-title-not-recognized (7), called-AP-invocation-identifier-not-recognized (8),
            called-AE-qualifier-not-recognized (9), called-AE-invocation-identifier-not-recognized (10),
            authentication-mechanism-name-not-recognized (11),
            authentication-mechanism-name-required (12), authentication-failure (13),
            authentication-required (14) },
        acse-service-provider [2] INTEGER {
            null (0), no-reason-given (1), no-common-acse-version (2) } },
    responding-AP-title [4] AP-title OPTIONAL,
    responder-acse-requirements [8] IMPLICIT BIT STRING { authentication (0) } OPTIONAL,
    mechanism-name [9] IMPLICIT OBJECT IDENTIFIER OPTIONAL,
    responding-authentication-value [10] Authentication-value OPTIONAL,
    implementation-information [29] IMPLICIT GraphicString OPTIONAL,
    user-information [30] IMPLICIT SEQUENCE OF CstaExternal OPTIONAL }
RLRQ-apdu ::= [APPLICATION 2] IMPLICIT SEQUENCE {
    reason [0] IMPLICIT INTEGER { normal (0), urgent (1), user-defined (30) } OPTIONAL,
    user-information [30] IMPLICIT SEQUENCE OF CstaExternal OPTIONAL }
RLRE-apdu ::= [APPLICATION 3] IMPLICIT SEQUENCE {
    reason [0] IMPLICIT INTEGER { normal (0), not-finished (1), user-defined (30) } OPTIONAL,
    user-information [30] IMPLICIT SEQUENCE OF CstaExternal OPTIONAL }
ABRT-apdu ::= [APPLICATION 4] IMPLICIT SEQUENCE {
    abort-source [0] IMPLICIT INTEGER { acse-service-user (0), acse-service-provider (1) },
    user-information [30] IMPLICIT SEQUENCE OF CstaExternal OPTIONAL }
AP-title ::= CHOICE { ap-title-form1 SEQUENCE { ... }, ap-title-form2 OBJECT IDENTIFIER }
Authentication-value ::= CHOICE {
    charstring [0] IMPLICIT GraphicString,
    bitstring [1] IMPLICIT BIT STRING,
    external [2] IMPLICIT OCTET STRING }
-- EXTERNAL (X.208), written out: asn1tools has no EXTERNAL type.
CstaExternal ::= [UNIVERSAL 8] IMPLICIT SEQUENCE {
    direct-reference OBJECT IDENTIFIER OPTIONAL,
    indirect-reference INTEGER OPTIONAL,
    encoding CHOICE {
        single-ASN1-type [0] ANY,
        octet-aligned [1] IMPLICIT OCTET STRING,
        arbitrary [2] IMPLICIT BIT STRING } }

-- ECMA-285 acse_user_info_csta.asn1: what a CSTA association says in user-information.
ACSEUserInformationForCSTA ::= CHOICE {
    oldDefinition OldACSEUserInformationForCSTA,
    newDefinition [0] IMPLICIT NewACSEUserInformationForCSTA }
OldACSEUserInformationForCSTA ::= SEQUENCE {
    cSTAVersion CSTAVersion,
    cSTAFunctionsRequiredByApplication CSTAFunctionality,
    cSTAFunctionsThatCanBeSupplied CSTAFunctionality }
NewACSEUserInformationForCSTA ::= SEQUENCE {
    cSTAVersion CSTAVersion,
    cSTAFunctionsRequiredByApplication [0] IMPLICIT CSTAFunctionality OPTIONAL,
    cSTAFunctionsThatCanBeSupplied [1] IMPLICIT CSTAFunctionality OPTIONAL,
    cSTAPrivateDataVersionList [2] IMPLICIT SEQUENCE OF INTEGER OPTIONAL }
CSTAFunctionality ::= SEQUENCE {
    switchingFunctionServices [0] IMPLICIT SwitchingFunctionServicesC2 OPTIONAL,
    eventReportServices [1] IMPLICIT EventReportServicesC2 OPTIONAL,
    computingFunctionServices [2] IMPLICIT BIT STRING OPTIONAL,
    bidirectionalServices [3] IMPLICIT BidirectionalServicesC2 OPTIONAL,
    statusReportingServices [4] IMPLICIT StatusReportingServicesC2 OPTIONAL,
    inputOutputServices [5] IMPLICIT BIT STRING OPTIONAL,
    voiceUnitServices [6] IMPLICIT BIT STRING OPTIONAL }
SwitchingFunctionServicesC2 ::= BIT STRING {
    alternateCall (0), answerCall (1), associateData (2), callCompletion (3), clearCall (4),
    clearConnection (5), conferenceCall (6), consultationCall (7), divertCall (8),
    holdCall (9), makeCall (10), makePredictiveCall (11), parkCall (12), queryDevice (13),
    reconnectCall (14), retrieveCall (15), sendDTMFTones (16), setFeature (17),
    singleStepConference (18), singleStepTransfer (19), transferCall (20) }
EventReportServicesC2 ::= BIT STRING {
    callCleared (0), conferenced (1), connectionCleared (2), delivered (3), diverted (4),
    established (5), failed (6), held (7), networkReached (8), originated (9), queued (10),
    retrieved (11), serviceInitiated (12), transferred (13), autoAnswer (14),
    callInformation (15), doNotDisturb (16), forwarding (17), messageWaiting (18),
    microphoneMute (19), speakerMute (20), speakerVolume (21), agentBusy (22),
    loggedOn (23), loggedOff (24), notReady (25), ready (26), workingAfterCall (27),
    backInService (28), outOfServiceEvent (29), privateEvent (30), playEvent (31),
    recordEvent (32), reviewEvent (33), stopEvent (34), suspendPlayEvent (35),
    suspendRecordEvent (36), voiceAttributesChangeEvent (37) }
BidirectionalServicesC2 ::= BIT STRING { escapeService (0), systemStatus (1) }
StatusReportingServicesC2 ::= BIT STRING {
    monitorStart (0), changeMonitorFilter (1), monitorStop (2), snapshotDevice (3),
    snapshotCall (4) }
CSTAVersion ::= BIT STRING {
    versionOne (0), versionTwo (1), versionThree (2), versionFour (3), versionFive (4),
    versionSix (5), versionSeven (6), versionEight (7), versionNine (8), versionTen (9),
    versionEleven (10), versionTwelve (11), versionThirteen (12), versionFourteen (13),
    versionFifteen (14), versionSixteen (15), versionSeventeen (16), versionEighteen (17),
    versionNineteen (18) }
END
"""


def csta_module(phase: int) -> str:
    """The ECMA-285 module text for CSTA ``phase`` (2 or 3)."""
    if phase not in (2, 3):
        raise ValueError(f"CSTA phase: expected 2 or 3, got {phase!r}")
    device = _DEVICE_ID_PHASE3 if phase == 3 else _DEVICE_ID_PHASE2
    events = _CALL_CONTROL_EVENTS_PHASE3 if phase == 3 else _CALL_CONTROL_EVENTS_PHASE2
    return _CSTA_TEMPLATE.replace("@DEVICE_ID@", device).replace("@CALL_CONTROL_EVENTS@", events)
